"""Edit the last stage and reapply: `vmlab provision --yes` against rebuilding the lab.

On the local libvirt, one VM: the demo profile with live snapshots and a last script stage
(`motd`, writing /etc/motd). First `vmlab rebuild --from-scratch` builds the lab (timed:
what rebuilding costs); then, each round, the last stage's script is edited and `vmlab
provision --yes` (timed, the CLI in a new process) finds that it changed, rolls back to its
snapshot and runs only it. Median of the rounds; the lab is destroyed at the end.
Usage: python bench/reapply_ratio.py [--runs 3]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VMLAB, median, run, save, table, target, vmlab_env, wall  # noqa: E402

LAB = "bench-reapply"


def write_profile(path: Path, version: int) -> None:
    path.write_text(f"""extends: demo
name: {LAB}
snapshots:
  mode: live
stages:
  - hosts
  - memcached-install
  - memcached-config
  - name: motd
    run: ["echo 'lab motd, version {version}' > /etc/motd"]
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    reapply: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        env = vmlab_env(Path(home))
        profile = Path(home) / f"{LAB}.yaml"
        write_profile(profile, 1)
        try:
            rebuild = wall(lambda: run(VMLAB + ["rebuild", "--profile", str(profile), "--lab",
                                                LAB, "--from-scratch"], env, timeout=3600))
            for version in range(2, args.runs + 2):
                write_profile(profile, version)
                reapply.append(wall(lambda: run(VMLAB + ["provision", "--lab", LAB, "--yes"],
                                                env, timeout=1800)))
            motd = subprocess.run(VMLAB + ["ssh", "--lab", LAB, "--", "cat", "/etc/motd"],
                                  env=env, capture_output=True, text=True).stdout.strip()
            if motd != f"lab motd, version {args.runs + 1}":
                raise RuntimeError(f"the last reapply did not take: /etc/motd is {motd!r}")
            noop = wall(lambda: run(VMLAB + ["provision", "--lab", LAB], env))
        finally:
            subprocess.run(VMLAB + ["destroy", "--lab", LAB, "--yes"], env=env,
                           capture_output=True)
    again = median(reapply)
    body = table(["way to apply an edit of the last stage", "median s", "of reapply"], [
        ["`vmlab provision --yes` (rolls back to the stage, runs it)", f"{again:.1f}", "1.0x"],
        ["`vmlab rebuild --from-scratch`", f"{rebuild:.1f}", f"{rebuild / again:.1f}x"],
        ["`vmlab provision` with nothing changed", f"{noop:.2f}", f"{noop / again:.2f}x"]])
    save("reapply_ratio", "Edit the last stage and reapply against rebuilding the lab (demo "
         "profile, live snapshots)",
         f"One `vmlab rebuild --from-scratch` of the demo profile with live snapshots and a "
         f"last script stage `motd`; then {args.runs} rounds of editing that stage's script "
         "and `vmlab provision --yes` (the CLI in a new process: it finds the stage changed, "
         "reverts to its snapshot, runs only it and takes `complete`); median. The last row "
         "is one more `vmlab provision` with nothing changed.",
         body, f"rebuild / reapply: {rebuild / again:.1f}x (target at least 10x): "
               f"{target(rebuild / again >= 10)}")


if __name__ == "__main__":
    main()

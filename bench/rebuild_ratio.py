"""`vmlab rebuild --from <first stage>` against `--from-scratch` for the demo profile.

Runs both back to back on the local libvirt (the from-scratch run first: the replay needs
the lab), prints the wall times and the ratio, then destroys the lab. One run of each (a
from-scratch rebuild of the demo lab takes minutes under TCG); the guest image is cached
under .cache/bench.
Usage: python bench/rebuild_ratio.py [--profile demo]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VMLAB, save, table, vmlab_env  # noqa: E402
from vmlab.profile import load_profile  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args()
    first = load_profile(args.profile).profile.stage_names[0]
    vmlab = VMLAB
    lab = "bench-rebuild"
    with tempfile.TemporaryDirectory() as home:
        env = vmlab_env(Path(home))
        try:
            scratch = timed(vmlab + ["rebuild", "--profile", args.profile, "--lab", lab,
                                     "--from-scratch"], env)
            replay = timed(vmlab + ["rebuild", "--profile", args.profile, "--lab", lab,
                                    "--from", first], env)
        finally:
            subprocess.run(vmlab + ["destroy", "--lab", lab, "--yes"], env=env, capture_output=True)
    body = table(["command", "wall s", "ratio"],
                 [["`vmlab rebuild --from-scratch`", f"{scratch:.1f}", f"{scratch / replay:.2f}x"],
                  [f"`vmlab rebuild --from {first}`", f"{replay:.1f}", "1.00x"]])
    save("rebuild_ratio", f"Nightly rebuild: from scratch against from the first stage "
         f"({args.profile} profile)",
         "One run of each, back to back: `--from-scratch` destroys and re-creates the lab "
         "and runs every stage; `--from <first stage>` rolls back to the first stage's "
         "snapshot and runs every stage again. The difference is what the snapshot saves: "
         "building the VM and booting it.", body,
         f"from scratch / from {first}: {scratch / replay:.2f}x (no target; issue 6's figure)")


if __name__ == "__main__":
    main()

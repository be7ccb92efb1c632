"""`vmlab rebuild --from <first stage>` against `--from-scratch` for the demo profile.

Runs both back to back on the local libvirt (the from-scratch run first: the replay needs
the lab), prints the wall times and the ratio, then destroys the lab.
Usage: python bench/rebuild_ratio.py [--profile demo]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from vmlab.profile import load_profile


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
    vmlab = [sys.executable, "-m", "vmlab"]
    lab = "bench-rebuild"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_STATE_HOME": home}
        try:
            scratch = timed(vmlab + ["rebuild", "--profile", args.profile, "--lab", lab,
                                     "--from-scratch"], env)
            replay = timed(vmlab + ["rebuild", "--profile", args.profile, "--lab", lab,
                                    "--from", first], env)
        finally:
            subprocess.run(vmlab + ["destroy", "--lab", lab], env=env, capture_output=True)
    print(f"rebuild --from-scratch     {scratch:7.1f} s")
    print(f"rebuild --from {first:<12}{replay:7.1f} s")
    print(f"ratio scratch / replay: {scratch / replay:.2f}x")


if __name__ == "__main__":
    main()

"""CLI start-up: `vmlab --help` and `vmlab status` against `python -c pass`, wall time.

Runs each command several times in fresh processes and prints the medians.
Usage: python bench/cli_start.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def median_wall(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    vmlab = str(Path(sys.executable).with_name("vmlab"))
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "XDG_STATE_HOME": home, "XDG_CONFIG_HOME": home}
        baseline = median_wall([sys.executable, "-c", "pass"], args.runs, env)
        help_time = median_wall([vmlab, "--help"], args.runs, env)
        status_time = median_wall([vmlab, "status"], args.runs, env)
    print(f"{'command':<22}{'median s':>10}{'over python':>14}")
    print(f"{'python -c pass':<22}{baseline:>10.3f}{'':>14}")
    print(f"{'vmlab --help':<22}{help_time:>10.3f}{help_time - baseline:>14.3f}")
    print(f"{'vmlab status (no lab)':<22}{status_time:>10.3f}{status_time - baseline:>14.3f}")
    total = help_time + status_time
    print(f"vmlab --help + vmlab status: {total:.3f} s (target < 0.25 s)")


if __name__ == "__main__":
    main()

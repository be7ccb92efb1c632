"""CLI start-up: `vmlab --help` and `vmlab status` against kcli's `kcli --help`, wall time.

Each command runs in a fresh process, the commands interleaved round by round so that they
share the machine's load; the table shows the medians and each one's ratio to kcli's start.
`vmlab status` runs with empty XDG dirs (no lab: it says so).
kcli comes from the benchmark's venv (.cache/bench-venv, made by `make bench`) and runs
with an empty HOME. `kcli --help` is kcli's start: `kcli version` also asks
api.github.com for updates, so it is not used.
Usage: python bench/cli_start.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_VENV, median, save, table, target  # noqa: E402


def once(argv: list[str], env: dict[str, str], ok: tuple[int, ...]) -> float:
    started = time.perf_counter()
    code = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode
    elapsed = time.perf_counter() - started
    if code not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {code}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    vmlab = str(Path(sys.executable).with_name("vmlab"))
    kcli = str(BENCH_VENV / "bin" / "kcli")
    if not Path(kcli).is_file():
        sys.exit(f"{kcli} is missing: `make bench-venv` installs kcli")
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "XDG_STATE_HOME": f"{home}/state",
               "XDG_CONFIG_HOME": f"{home}/config", "XDG_CACHE_HOME": f"{home}/cache"}
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], (0,)),
            "kcli --help": ([kcli, "--help"], (0,)),
            "vmlab --help": ([vmlab, "--help"], (0,)),
            "vmlab status (no lab)": ([vmlab, "status"], (0,)),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv, ok in commands.values():  # warm the page cache once
            once(argv, env, ok)
        for _ in range(args.runs):
            for name, (argv, ok) in commands.items():
                times[name].append(once(argv, env, ok))
    medians = {name: median(values) for name, values in times.items()}
    base = medians["kcli --help"]
    rows = [[f"`{name}`", f"{value * 1000:.0f}", f"{value / base:.2f}x"]
            for name, value in medians.items()]
    body = table(["command", "median ms", "of kcli --help"], rows)
    worst = max(medians["vmlab --help"], medians["vmlab status (no lab)"]) / base
    save("cli_start", "CLI start: vmlab against kcli",
         f"{args.runs} rounds; in each round every command runs once in a fresh process "
         "(interleaved, so all share the same load); medians. `python -c pass` is the "
         "interpreter's own start, for scale.", body,
         f"slowest vmlab command / kcli --help: {worst:.2f}x (target at most 0.50x): "
         f"{target(worst <= 0.5)}")


if __name__ == "__main__":
    main()

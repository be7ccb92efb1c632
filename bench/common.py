"""Helpers shared by the benchmarks: medians, markdown tables, where results and tools live.

Each benchmark prints its table and saves it (with how it was measured) under
``.cache/bench/results/``; ``bench/report.py`` assembles docs/benchmarks.md from those files.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("VMLAB_BENCH_CACHE", REPO / ".cache" / "bench"))
RESULTS = CACHE / "results"
#: the benchmark's own venv: the tools vmlab is compared with (kcli, ansible-core)
BENCH_VENV = Path(os.environ.get("VMLAB_BENCH_VENV", REPO / ".cache" / "bench-venv"))
VMLAB = [sys.executable, "-m", "vmlab"]

sys.path.insert(0, str(REPO))


def vmlab_env(state_home: Path) -> dict[str, str]:
    """Environment for vmlab subprocesses: private state/config, the bench's image cache."""
    return {**os.environ, "XDG_STATE_HOME": str(state_home / "state"),
            "XDG_CONFIG_HOME": str(state_home / "config"),
            "XDG_CACHE_HOME": str(CACHE / "xdg"),
            "PYTHONPATH": str(REPO)}


def use_env(env: dict[str, str]) -> None:
    """Point this process's vmlab (imported in-process) at the same dirs as ``env``."""
    for key in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        os.environ[key] = env[key]


def wall(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def run(argv: Sequence[str], env: dict[str, str] | None = None, *, quiet: bool = True,
        timeout: float | None = None) -> None:
    """Run a command; on failure show its output and raise."""
    result = subprocess.run(list(argv), env=env, stdin=subprocess.DEVNULL,
                            capture_output=quiet, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}\n"
                           f"{result.stdout or ''}{result.stderr or ''}")


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table (readable as plain text too); columns of figures are right-aligned."""
    def figure(cell: object) -> bool:
        try:
            float(str(cell).rstrip("x"))
            return True
        except ValueError:
            return False

    numeric = [bool(rows) and all(figure(row[i]) for row in rows) for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def load_note() -> str:
    """The load average and the other guests running, at the time of a measurement."""
    one, five, _fifteen = os.getloadavg()
    guests = subprocess.run(["virsh", "-c", "qemu:///system", "list", "--name"],
                            capture_output=True, text=True).stdout.split()
    return (f"load average {one:.2f} (1 min), {five:.2f} (5 min); "
            f"{len(guests)} libvirt guest(s) running")


def save(name: str, title: str, method: str, body: str, verdict: str,
         source: str | None = None) -> None:
    """Print a benchmark's result and keep it for bench/report.py.

    ``source``: what measured it, when not the bench/ script whose name ``name`` starts with.
    """
    text = f"{body}\n\n{verdict}"
    print(f"## {title}\n\n{text}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps({
        "title": title, "method": method, "body": body, "verdict": verdict,
        "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "load": load_note(), "source": source}, indent=2))


def target(met: bool) -> str:
    return "**meets the target**" if met else "**misses the target**"

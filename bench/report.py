"""Write docs/benchmarks.md from the results the benchmarks saved under .cache/bench/results.

Describes the machine (cores, CPU, memory, KVM or TCG, OS, libvirt, the versions compared)
and puts each benchmark's method, load and table in the document. Run by `make bench`
after the benchmarks; `--note` adds a sentence about what else ran on the machine.
Usage: python bench/report.py [--note TEXT] [--out docs/benchmarks.md]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_VENV, REPO, RESULTS, load_note, table  # noqa: E402

ORDER = ["cli_start", "lab_commands", "snapshot_overhead", "remote_commands", "rollback_ratio",
         "rollback_ratio_live", "rollback_ratio_offline", "rollback_ratio_openstack",
         "rebuild_ratio", "reapply_ratio"]


def _first(path: str, prefix: str) -> str:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1]
    except OSError:
        pass
    return "unknown"


def _output(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def reaper_note() -> str:
    """Who reaps the qemu processes libvirtd stops: libvirt waits for that on every revert."""
    try:
        pid = Path("/run/libvirtd.pid").read_text().strip()
        ppid = _first(f"/proc/{pid}/status", "PPid").strip()
        parent = Path(f"/proc/{ppid}/comm").read_text().strip()
        init = Path("/proc/1/comm").read_text().strip()
        init = "systemd" if init == "systemd" else "not systemd"
    except (OSError, ValueError):
        return "unknown"
    if parent == "tini":
        return (f"libvirtd runs under `tini -s` (scripts/start-libvirtd), which reaps each "
                f"qemu as it exits (PID 1 is {init})")
    return f"libvirtd's parent is {parent}; PID 1 is {init}"


def machine() -> list[list[str]]:
    from vmlab.drivers.libvirt import LibvirtDriver

    driver = LibvirtDriver("qemu:///system")
    try:
        accel = driver.acceleration()
        libvirt_version = driver.conn.getLibVersion()
        qemu_version = driver.conn.getVersion()
    finally:
        driver.close()

    def dotted(number: int) -> str:
        return f"{number // 1000000}.{number // 1000 % 1000}.{number % 1000}"

    mem_kib = int(_first("/proc/meminfo", "MemTotal").split()[0])
    versions = _output([str(BENCH_VENV / "bin" / "python"), "-c",
                        "import importlib.metadata as m; "
                        "print(', '.join(f'{p} {m.version(p)}' for p in "
                        "('kcli', 'ansible-core', 'libvirt-python')))"])
    vmlab_versions = _output([sys.executable, "-c",
                              "import importlib.metadata as m; "
                              "print(', '.join(f'{p} {m.version(p)}' for p in "
                              "('vmlab', 'fabric', 'paramiko')))"])
    commit = _output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if _output(["git", "-C", str(REPO), "status", "--porcelain", "--", "vmlab"]):
        commit += " with uncommitted changes to vmlab/ in the working tree"
    return [
        ["vmlab (HEAD when the report was written)", commit],
        ["CPU", f"{os.cpu_count()} cores, {_first('/proc/cpuinfo', 'model name')}"],
        ["memory", f"{mem_kib / 1024 / 1024:.1f} GiB"],
        ["acceleration", "KVM" if accel == "kvm" else "none: no KVM, guests run under TCG "
                                                      "(software emulation)"],
        ["OS", f"{_first('/etc/os-release', 'PRETTY_NAME').strip(chr(34))}, "
               f"kernel {platform.release()}"],
        ["libvirt / QEMU", f"{dotted(libvirt_version)} / {dotted(qemu_version)}"],
        ["Python", platform.python_version()],
        ["qemu processes reaped by", reaper_note()],
        ["vmlab side", vmlab_versions],
        ["compared with", versions],
        ["load when the report was written", load_note()],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    results = {name: json.loads((RESULTS / f"{name}.json").read_text())
               for name in ORDER if (RESULTS / f"{name}.json").is_file()}
    scripts = sorted(path.stem for path in (REPO / "bench").glob("*.py")
                     if path.stem not in ("common", "report"))
    missing = [name for name in scripts if not any(r.startswith(name) for r in results)]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/report.py writes this file from the run's results;",
        "do not edit it by hand). Every figure is a ratio of two things measured side by side",
        "in the same run on the same machine, repeated, median; the absolute times only give",
        "the scale and depend on the machine and its load.",
        "",
        "## Machine",
        "",
        table(["", ""], machine()),
        "",
    ]
    if args.note:
        lines += [f"Load: {args.note}", ""]
    lines += ["## Summary", "", table(["benchmark", "result"],
                                     [[r["title"], r["verdict"]] for r in results.values()]), ""]
    for name, result in results.items():
        source = result.get("source") or \
            f"`bench/{next(s for s in scripts if name.startswith(s))}.py`"
        lines += [f"## {result['title']}", "",
                  f"{source}, finished {result['measured']}; then: {result['load']}.",
                  "",
                  result["method"], "", result["body"], "", result["verdict"], ""]
    if missing:
        lines += ["## Not measured in this run", "",
                  ", ".join(f"`bench/{name}.py`" for name in missing), ""]
    lines += ["## Running them", "",
              "```console",
              "make bench     # the bench venv (kcli, ansible-core), every benchmark, this file",
              "```", "",
              "Each script also runs alone (`.venv/bin/python bench/NAME.py --help`) and prints",
              "its table; the VM benchmarks run one demo VM at a time and destroy it.", ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

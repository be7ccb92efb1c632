"""The commands people type most, on a real running lab, against `kcli list vm`, wall time.

`vmlab status`, `vmlab snapshots`, `vmlab ssh-config` and `vmlab openrc admin` on a lab
whose guest is up, each in a fresh process as typed (the `vmlab` script), against kcli's
`kcli list vm` on the same libvirt host (kcli from the benchmark's venv, .cache/bench-venv,
with an empty HOME: its default client, the local qemu:///system). The commands run
interleaved round by round, so they share the machine's load, the guest's included;
medians, and each one's ratio to `kcli list vm`.

The lab: by default this script makes one (`vmlab create --no-provision` of a profile that
extends the given one with a `keystone` stage and the OpenStack users' secrets, so that
`vmlab openrc` has credentials to print; the stages are not run), measures, and destroys
it; the measuring starts ``--settle`` seconds after the create returned, once the new
guest has finished starting its services (a busy guest takes one of the cores the
commands share). `--lab NAME` measures an existing lab of the environment's vmlab
instead, and leaves it alone.
Usage: python bench/lab_commands.py [--runs N] [--profile demo] [--lab NAME] [--settle S]
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

from common import (BENCH_VENV, VMLAB, median, run, save, table, target,  # noqa: E402
                    vmlab_env)

LAB = "bench-status"
TARGET = 0.5


def once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}\n{result.stderr}")
    return elapsed


def measure(lab: str, env: dict[str, str], runs: int) -> dict[str, list[float]]:
    vmlab = str(Path(sys.executable).with_name("vmlab"))
    kcli = str(BENCH_VENV / "bin" / "kcli")
    with tempfile.TemporaryDirectory() as kcli_home:
        kcli_env = {**os.environ, "HOME": kcli_home}
        commands = {
            "kcli list vm": ([kcli, "list", "vm"], kcli_env),
            "vmlab status": ([vmlab, "status", "--lab", lab], env),
            "vmlab snapshots": ([vmlab, "snapshots", "--lab", lab], env),
            "vmlab ssh-config": ([vmlab, "ssh-config", "--lab", lab], env),
            "vmlab openrc admin": ([vmlab, "openrc", "admin", "--lab", lab], env),
        }
        for argv, command_env in commands.values():  # warm the page cache once
            once(argv, command_env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, (argv, command_env) in commands.items():
                times[name].append(once(argv, command_env))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds to wait after making the lab, before measuring")
    parser.add_argument("--profile", default="demo", help="the profile the lab extends")
    parser.add_argument("--lab", default=None,
                        help="measure this existing lab (of the environment's vmlab dirs) "
                             "instead of making one")
    args = parser.parse_args()
    if not (BENCH_VENV / "bin" / "kcli").is_file():
        sys.exit(f"{BENCH_VENV / 'bin' / 'kcli'} is missing: `make bench-venv` installs kcli")
    if args.lab is not None:
        env = {**os.environ}
        times = measure(args.lab, env, args.runs)
        made = f"the existing lab `{args.lab}`"
    else:
        with tempfile.TemporaryDirectory() as home:
            env = vmlab_env(Path(home))
            profile = Path(home) / "bench-status.yaml"
            profile.write_text(
                f"extends: {args.profile}\nname: bench-status\nplatform: debian12\n"
                "secrets: [root, admin, demo, keystone_db]\n"
                "stages: [hosts, memcached-install, memcached-config, keystone]\n")
            run(VMLAB + ["create", "--profile", str(profile), "--no-provision", "--lab", LAB],
                env, timeout=1800)
            try:
                time.sleep(args.settle)
                times = measure(LAB, env, args.runs)
            finally:
                run(VMLAB + ["destroy", "--lab", LAB, "--yes"], env)
        made = (f"a `{args.profile}` lab made with `--no-provision` (its profile adds a "
                "`keystone` stage and the OpenStack secrets, so openrc has a password to "
                f"print), its guest up and left {args.settle:.0f} s to settle; destroyed "
                "afterwards")
    medians = {name: median(values) for name, values in times.items()}
    base = medians["kcli list vm"]
    rows = [[f"`{name}`", f"{value * 1000:.0f}", f"{value / base:.2f}x"]
            for name, value in medians.items()]
    body = table(["command", "median ms", "of kcli list vm"], rows)
    worst_name = max((n for n in medians if n.startswith("vmlab")), key=medians.__getitem__)
    worst = medians[worst_name] / base
    save("lab_commands", "Commands on a running lab: vmlab against kcli list vm",
         f"{args.runs} rounds on {made}; in each round every command runs once in a fresh "
         "process (interleaved, so all share the same load); medians. `kcli list vm` asks "
         "the same libvirt daemon for its VMs (kcli with an empty HOME).", body,
         f"slowest vmlab command ({worst_name}) / kcli list vm: {worst:.2f}x (target at most "
         f"{TARGET:.2f}x): {target(worst <= TARGET)}")


if __name__ == "__main__":
    main()

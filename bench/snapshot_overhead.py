"""Snapshot create and revert: vmlab's libvirt driver against raw virsh, on the same domain.

Builds a demo lab (`vmlab create --profile demo --no-provision --lab bench-snap`, the guest
image cached under .cache/bench), then on its domain, alternating which goes first:

- create: ``LibvirtDriver.snapshot_create`` against ``virsh snapshot-create-as``;
- revert: ``LibvirtDriver.snapshot_revert`` (what `vmlab rollback` calls) against
  ``virsh snapshot-revert``, both to the lab's first snapshot.

vmlab runs in-process on an open connection, as inside `vmlab provision`/`rollback`; a
second pair of rows opens a new connection for every call, as virsh (a new process) does.
The demo profile's snapshots are `offline`: vmlab shuts the guest down and takes an internal
qcow2 snapshot of the shut-off domain. So both sides here act on the shut-off domain
(no flags on either side): like for like, and the guest's shutdown and
boot around the snapshot (the same for both) are left out. The snapshots made here are
deleted (untimed) and the lab is destroyed at the end.
Usage: python bench/snapshot_overhead.py [--runs 7]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VMLAB, median, run, save, table, target, use_env, vmlab_env, wall  # noqa: E402

LAB = "bench-snap"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", default="demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = vmlab_env(Path(home))
        use_env(env)
        from vmlab import drivers
        from vmlab.lab import open_lab
        from vmlab.vmspec import driver_options

        run(VMLAB + ["create", "--profile", args.profile, "--no-provision", "--lab", LAB], env,
            timeout=1800)
        try:
            with open_lab(LAB, "bench snapshots") as lab:
                ref = lab.ref()
                driver = lab.driver
                mode = lab.state.snapshots.mode
                live = mode == "live"
                first = lab.state.stages[0].name
                options = driver_options(lab.state.hypervisor, None)
                uri = options.get("uri", "qemu:///system")
                if not live:
                    lab.shutdown(ref)
                virsh = ["virsh", "-q", "-c", uri]
                times: dict[str, list[float]] = {k: [] for k in (
                    "create vmlab", "create virsh", "revert vmlab", "revert virsh",
                    "create vmlab-conn", "revert vmlab-conn")}

                def fresh(call) -> None:
                    with drivers.connect("libvirt", **options) as conn:
                        call(conn)

                for i in range(args.runs):
                    pairs = [
                        ("create vmlab", lambda: driver.snapshot_create(
                            ref, f"bench-vmlab-{i}", "bench", live=live)),
                        ("create virsh", lambda: run(virsh + [
                            "snapshot-create-as", ref.name, f"bench-virsh-{i}", "bench"])),
                        ("create vmlab-conn", lambda: fresh(lambda d: d.snapshot_create(
                            ref, f"bench-conn-{i}", "bench", live=live))),
                        ("revert vmlab", lambda: driver.snapshot_revert(ref, first)),
                        ("revert virsh", lambda: run(virsh + ["snapshot-revert", ref.name,
                                                              first])),
                        ("revert vmlab-conn", lambda: fresh(lambda d: d.snapshot_revert(
                            ref, first))),
                    ]
                    if i % 2:
                        pairs = [pairs[1], pairs[0], pairs[2], pairs[4], pairs[3], pairs[5]]
                    for name, call in pairs:
                        times[name].append(wall(call))
                    for prefix in ("bench-vmlab", "bench-virsh", "bench-conn"):
                        driver.snapshot_delete(ref, f"{prefix}-{i}")
        finally:
            run(VMLAB + ["destroy", "--lab", LAB, "--yes"], env)
    ms = {name: median(values) * 1000 for name, values in times.items()}
    create = ms["create vmlab"] / ms["create virsh"]
    revert = ms["revert vmlab"] / ms["revert virsh"]
    rows = [
        ["create", "`virsh snapshot-create-as`", f"{ms['create virsh']:.0f}", "1.00x"],
        ["create", "vmlab `snapshot_create`, open connection", f"{ms['create vmlab']:.0f}",
         f"{create:.2f}x"],
        ["create", "vmlab `snapshot_create`, new connection",
         f"{ms['create vmlab-conn']:.0f}", f"{ms['create vmlab-conn'] / ms['create virsh']:.2f}x"],
        ["revert", "`virsh snapshot-revert`", f"{ms['revert virsh']:.0f}", "1.00x"],
        ["revert", "vmlab `snapshot_revert`, open connection", f"{ms['revert vmlab']:.0f}",
         f"{revert:.2f}x"],
        ["revert", "vmlab `snapshot_revert`, new connection",
         f"{ms['revert vmlab-conn']:.0f}", f"{ms['revert vmlab-conn'] / ms['revert virsh']:.2f}x"],
    ]
    state = "live: running domain" if live else "offline: shut-off domain, internal qcow2"
    body = table(["operation", f"how ({state})", "median ms", "of virsh"], rows)
    worst = max(create, revert, ms["create vmlab-conn"] / ms["create virsh"],
                ms["revert vmlab-conn"] / ms["revert virsh"])
    save("snapshot_overhead", f"Snapshot overhead: vmlab's driver against virsh "
         f"({args.profile} profile, {mode} snapshots)",
         f"{args.runs} rounds on the domain of a `{args.profile}` lab made with "
         f"`--no-provision`, which of vmlab and virsh goes first alternating per round; "
         "medians. Snapshots are taken of the shut-off domain, as the profile's `offline` "
         "mode does (the guest shutdown and boot around it are the same for both and left "
         "out); reverts go to the lab's first snapshot." if not live else
         f"{args.runs} rounds on the running domain of a `{args.profile}` lab; medians.",
         body, f"worst vmlab / virsh: {worst:.2f}x (target at most 1.15x): "
                f"{target(worst <= 1.15)}")


if __name__ == "__main__":
    main()

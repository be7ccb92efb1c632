"""The long one (`make e2e-openstack`): a real Keystone and Glance in a Debian guest,
deployed by the newton-aio stages, rolled back to before keystone, and resumed. The profile
is zed-aio-debian12 (Debian 12), or the one VMLAB_E2E_PROFILE names (`make e2e-openstack
PROFILE=epoxy-aio-debian13`).

It runs on the profile's own libvirt networks, as newton-aio defines them (a NAT provider
network with DHCP, an isolated management network where the guest is 192.168.70.2), made by
vmlab in a network namespace of the test's own with a private libvirtd
(tests/netns_fixtures.py): the Debian archive is reached through the NAT network, SSH over
the management network; the networks go with the lab and the host's network is unchanged.

Every secret of the lab is a seed made of what breaks quoting (`'`, `"`, `$`, a space, a
backslash): MariaDB, RabbitMQ, keystone-manage, the openstack client and the openrc files
must each get it byte for byte, as the built-in stages hand secrets over by environment or
stdin, never inside a command.

It also measures what issue "proof under pressure" asks of rollback at full scale: getting
back to just before keystone by `vmlab rollback keystone` against building the lab to that
point (the same run's create up to keystone's start, without the guest image build), saved
for docs/benchmarks.md.
"""
from __future__ import annotations

import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests import host_network
from tests.lab_harness import Vmlab

pytestmark = [pytest.mark.openstack, pytest.mark.e2e, pytest.mark.slow]
LAB = "e2e-openstack"
SEED = "it's \"$HOME\" \\x"
PROFILE = os.environ.get("VMLAB_E2E_PROFILE") or "zed-aio-debian12"


def stage_times(vmlab) -> str:
    status = vmlab.json("status", "--lab", LAB)
    rows = [f"  {r['name']:<16} {r['status']:<8} {r['duration'] or 0:7.0f}s"
            for r in status["stages"]]
    return "\n".join(rows)


def image_build_seconds(vmlab) -> float:
    """How long this lab's create spent building the guest image (0 when it was cached)."""
    log = (vmlab.state_dir / "labs" / LAB / "logs" / "vmlab.log").read_text()
    stamps = [datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
              for m in re.finditer(r"^(\S+ \S+) INFO vmlab: guest image(?: \.\.\.|: done)$",
                                   log, re.M)][:2]
    return stamps[1] - stamps[0] if len(stamps) == 2 else 0.0


def save_rollback_figure(rebuild: float, rollback: float, mode: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from common import save, table, target

    ratio = rebuild / rollback
    save("rollback_ratio_openstack",
         f"Rollback of a failed stage against rebuilding to the same point "
         f"({PROFILE} profile, {mode} snapshots)",
         "One round, measured by `make e2e-openstack` (not by `make bench`): the time its "
         "`vmlab create` took to reach the start of `keystone` (VM, every earlier stage and "
         "its snapshot; the guest image build left out), against `vmlab rollback keystone` "
         "after keystone and glance had run (the CLI in a new process).",
         table(["way back to just before keystone", "s", "of rollback"],
               [["`vmlab rollback keystone`", f"{rollback:.1f}", "1.0x"],
                ["create + prep ... memcached + snapshot 'keystone'", f"{rebuild:.1f}",
                 f"{ratio:.0f}x"]]),
         f"rebuild / rollback: {ratio:.0f}x (target at least 20x): {target(ratio >= 20)}",
         source="`make e2e-openstack` (tests/test_e2e_openstack.py)")


def test_deploy_roll_back_keystone_and_resume(netns_libvirtd, vmlab_netns, host_network_before):
    vmlab = vmlab_netns
    started = time.monotonic()
    create_wall = time.time()
    seeded = Vmlab({**vmlab.env, "VMLAB_SEED_PASSWORDS": SEED}, prefix=vmlab.prefix)
    seeded("create", "--profile", PROFILE, "--lab", LAB, timeout=5400)
    deployed = time.monotonic() - started
    print(f"\ndeployed in {deployed / 60:.1f} min:\n{stage_times(vmlab)}")

    def guest(command: str, expect: int | None = 0):
        return vmlab("ssh", "--lab", LAB, "--", command, expect=expect)

    assert "vmlab-test active" in guest(". /root/admin-openrc && openstack image list "
                                        "-f value -c Name -c Status").stdout
    guest(". /root/demo-openrc && openstack token issue")
    status = vmlab.json("status", "--lab", LAB)

    rollback_started = time.monotonic()
    vmlab("rollback", "keystone", "--lab", LAB)
    rollback = time.monotonic() - rollback_started
    keystone = next(r for r in status["stages"] if r["name"] == "keystone")
    rebuild = (datetime.fromisoformat(keystone["started"]).timestamp() - create_wall
               - image_build_seconds(vmlab))
    print(f"rollback of keystone took {rollback:.1f}s; reaching that point took "
          f"{rebuild / 60:.1f} min ({rebuild / rollback:.0f}x)")
    save_rollback_figure(rebuild, rollback, status["snapshot_mode"])
    databases = guest("mysql -N -e 'SHOW DATABASES'").stdout.split()
    assert "keystone" not in databases and "glance" not in databases
    port = guest("(exec 3<>/dev/tcp/controller/5000) 2>/dev/null && echo open || echo closed")
    assert port.stdout.strip() == "closed"  # nothing serves Keystone any more
    assert guest("test -e /etc/keystone/keystone.conf", expect=None).returncode == 1

    resume_started = time.monotonic()
    vmlab("resume", "--lab", LAB, timeout=3600)
    print(f"resume (keystone, glance) took {(time.monotonic() - resume_started) / 60:.1f} min")
    assert "vmlab-test active" in guest(". /root/admin-openrc && openstack image list "
                                        "-f value -c Name -c Status").stdout
    status = vmlab.json("status", "--lab", LAB)
    assert all(r["status"] == "done" for r in status["stages"]) and status["complete"]
    print(f"total {(time.monotonic() - started) / 60:.1f} min")

    # on the profile's libvirt networks: the guest's NICs are network interfaces
    networks = netns_libvirtd.virsh("domiflist", f"vmlab-{LAB}")
    assert "vmlab-provider" in networks and "vmlab-management" in networks
    vmlab("destroy", "--lab", LAB, "--yes")
    assert f"vmlab-{LAB}" not in netns_libvirtd.virsh("list", "--all", "--name").split()
    assert not {"vmlab-provider", "vmlab-management"} & set(
        netns_libvirtd.virsh("net-list", "--all", "--name").split())
    changed = host_network_before.differences(host_network.snapshot())
    assert not changed, "\n".join(changed)

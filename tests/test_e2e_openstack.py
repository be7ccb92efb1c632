"""The long one (`make e2e-openstack`): a real Keystone and Glance in a Debian 12 guest,
deployed by the newton-aio stages, rolled back to before keystone, and resumed."""
from __future__ import annotations

import time

import pytest

from tests.lab_harness import virsh

pytestmark = [pytest.mark.openstack, pytest.mark.e2e, pytest.mark.slow]
LAB = "e2e-openstack"


def stage_times(vmlab) -> str:
    status = vmlab.json("status", "--lab", LAB)
    rows = [f"  {r['name']:<16} {r['status']:<8} {r['duration'] or 0:7.0f}s"
            for r in status["stages"]]
    return "\n".join(rows)


def test_deploy_roll_back_keystone_and_resume(libvirtd, vmlab):
    started = time.monotonic()
    vmlab("create", "--profile", "zed-aio-debian12", "--lab", LAB, timeout=3600)
    deployed = time.monotonic() - started
    print(f"\ndeployed in {deployed / 60:.1f} min:\n{stage_times(vmlab)}")

    def guest(command: str, expect: int | None = 0):
        return vmlab("ssh", "--lab", LAB, "--", command, expect=expect)

    assert "vmlab-test active" in guest(". /root/admin-openrc && openstack image list "
                                        "-f value -c Name -c Status").stdout
    guest(". /root/demo-openrc && openstack token issue")

    rollback_started = time.monotonic()
    vmlab("rollback", "keystone", "--lab", LAB)
    print(f"rollback of keystone took {time.monotonic() - rollback_started:.0f}s")
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

    vmlab("destroy", "--lab", LAB)
    assert f"vmlab-{LAB}" not in virsh("list", "--all", "--name").split()

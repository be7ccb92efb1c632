"""End to end on a real libvirtd with a real qemu guest, through the real CLI.

The demo profile plus a stage that fails on its first run after writing a marker file to
the guest's disk: create fails at that stage, rollback really reverts the disk (the marker
is gone), resume runs to the end, destroy leaves nothing behind.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.lab_harness import virsh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAB = "e2e-demo"
MARKER = "/var/lib/vmlab-e2e-marker"


def write_profile(path: Path, fail: bool) -> None:
    """The demo profile with a `flaky` stage; `fail` makes it fail after writing the marker."""
    ending = '"false"' if fail else '"true"'
    path.write_text(textwrap.dedent(f"""\
        extends: demo
        name: e2e-demo
        stages:
          - hosts
          - name: flaky
            description: writes a marker to the disk, then {'fails' if fail else 'succeeds'}
            run:
              - echo "written by the flaky stage" > {MARKER} && sync
              - {ending}
            verify:
              - test -s {MARKER}
          - memcached-install
          - memcached-config
        """))


def test_create_fail_rollback_resume_destroy(libvirtd, vmlab, tmp_path):
    profile = tmp_path / "e2e-demo.yaml"
    write_profile(profile, fail=True)

    # 1. create runs the stages and stops at the failing one, naming the way back.
    failed = vmlab("create", "--profile", str(profile), "--lab", LAB, expect=1)
    assert f"vmlab rollback flaky --lab {LAB}" in failed.stderr
    assert f"vmlab resume --lab {LAB}" in failed.stderr
    assert "Traceback" not in failed.stderr

    status = vmlab.json("status", "--lab", LAB)
    stages = {row["name"]: row for row in status["stages"]}
    assert stages["hosts"]["status"] == "done"
    assert stages["flaky"]["status"] == "failed"
    assert stages["memcached-install"]["status"] == "pending"
    assert status["power"] == "running"
    assert status["acceleration"] in ("kvm", "tcg")
    assert status["snapshot_mode"] == "offline"
    assert {"hosts", "flaky"} <= {s["name"] for s in vmlab.json("snapshots", "--lab", LAB)}
    log = Path(stages["flaky"]["log"]).read_text()
    assert "exit 1" in log or "exit code 1" in log or "status 1" in log

    # The failed stage wrote its marker to the guest's disk.
    assert "written by the flaky stage" in vmlab("ssh", "--lab", LAB, "--", "cat", MARKER).stdout
    # The demo's first stage really ran: the controller resolves to the management address.
    hosts = vmlab("ssh", "--lab", LAB, "--", "getent", "hosts", "controller").stdout
    assert hosts.split()[0] == "192.168.70.2"

    # 2. rollback reverts the disk: the marker is gone.
    vmlab("rollback", "flaky", "--lab", LAB)
    gone = vmlab("ssh", "--lab", LAB, "--", "test", "-e", MARKER, expect=None)
    assert gone.returncode == 1, gone.stderr
    status = vmlab.json("status", "--lab", LAB)
    assert [row["status"] for row in status["stages"]] == ["done", "pending", "pending",
                                                           "pending"]

    # 3. the operator fixes the stage, then resume runs from it to the end.
    write_profile(profile, fail=False)
    vmlab("resume", "--lab", LAB)
    status = vmlab.json("status", "--lab", LAB)
    assert all(row["status"] == "done" for row in status["stages"]), status["stages"]
    assert status["complete"] is True
    snapshots = vmlab.json("snapshots", "--lab", LAB)
    names = [s["name"] for s in snapshots]
    assert names == ["hosts", "flaky", "memcached-install", "memcached-config", "complete"]
    parents = {s["name"]: s["parent"] for s in snapshots}
    assert parents["flaky"] == "hosts" and parents["complete"] == "memcached-config"
    # memcached answers on the management address inside the guest.
    reply = vmlab("ssh", "--lab", LAB, "--",
                  "exec 3<>/dev/tcp/192.168.70.2/11211; printf 'version\\r\\n' >&3; "
                  "read -t 5 r <&3; echo $r").stdout
    assert reply.startswith("VERSION ")

    # 4. a corrupt state file is a clear error with a way back from the hypervisor's tags.
    state_file = vmlab.state_dir / "labs" / LAB / "state.json"
    state_file.write_text("{torn")
    broken = vmlab("status", "--lab", LAB, expect=1)
    assert "not valid JSON" in broken.stderr and f"vmlab recover --lab {LAB}" in broken.stderr
    vmlab("recover", "--lab", LAB, "--profile", str(profile))
    recovered = vmlab.json("status", "--lab", LAB)
    assert [row["status"] for row in recovered["stages"]] == ["done"] * 4

    # 5. destroy leaves no domain, volume, console log or lab file.
    console_log = Path(vmlab.json("status", "--lab", LAB)["console_log"])
    assert console_log.is_file()
    vmlab("destroy", "--lab", LAB, "--yes")
    assert not console_log.exists()
    assert f"vmlab-{LAB}" not in virsh("list", "--all", "--name").split()
    volumes = virsh("vol-list", "vmlab")
    assert f"vmlab-{LAB}" not in volumes
    assert not (vmlab.state_dir / "labs" / LAB).exists()


def test_lab_on_a_remote_hypervisor_through_qemu_ssh(libvirtd, vmlab, tmp_path):
    """qemu+ssh:// to an sshd on 127.0.0.1: disks and boot files travel by volume upload
    streams, and the guest's SSH is reached through the hypervisor host as a jump host."""
    from tests.sshd import Sshd

    server = Sshd(tmp_path / "hypervisor-sshd").start()
    try:
        uri = (f"qemu+ssh://root@127.0.0.1:{server.port}/system?keyfile={server.client_key}"
               "&no_verify=1")
        profile = tmp_path / "remote.yaml"
        profile.write_text(textwrap.dedent(f"""\
            extends: demo
            name: remote
            hypervisor: {{kind: libvirt, uri: "{uri}"}}
            stages:
              - name: hello
                run: ["echo hello from the remote lab > /root/hello && sync"]
                verify: ["grep -q hello /root/hello"]
            """))
        vmlab("create", "--profile", str(profile), "--lab", "e2e-remote")
        status = vmlab.json("status", "--lab", "e2e-remote")
        assert status["uri"] == uri
        assert status["ssh"]["via"] == f"root@127.0.0.1:{server.port}"
        assert [r["status"] for r in status["stages"]] == ["done"]
        out = vmlab("ssh", "--lab", "e2e-remote", "--", "cat", "/root/hello").stdout
        assert out == "hello from the remote lab\n"
        vmlab("rollback", "hello", "--lab", "e2e-remote")
        assert vmlab("ssh", "--lab", "e2e-remote", "--", "test", "-e", "/root/hello",
                     expect=None).returncode == 1
        vmlab("destroy", "--lab", "e2e-remote", "--yes")
        assert "vmlab-e2e-remote" not in virsh("list", "--all", "--name").split()
        assert "vmlab-e2e-remote" not in virsh("vol-list", "vmlab")
    finally:
        server.stop()

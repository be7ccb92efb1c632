"""End to end on a remote libvirt host: the demo lab through qemu+ssh:// to an sshd on
127.0.0.1, with a real qemu guest. In its own file so that `make test` runs it beside the
guests of tests/test_e2e_demo.py (scripts/run-tests puts files in two groups).
"""
from __future__ import annotations

import textwrap

import pytest

from tests.lab_harness import virsh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


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

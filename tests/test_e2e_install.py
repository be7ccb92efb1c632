"""`make e2e-install`: a real unattended install. debian-installer boots from Debian's netboot
kernel, fetches its preseed from vmlab's install server, installs Debian 12 from the Debian
mirror, calls back from late_command and powers off; vmlab switches the VM to its disk and
runs the Debian twin's prep, network and ntp stages on the installed system.

The lab runs on a libvirtd of this module's own (tests/private_libvirtd.py), and vmlab runs
inside that daemon's mount namespace, where the serial console log is: vmlab shows the
installer's progress from it. The guest's NICs are user-mode ones (the provider NIC reaches
the mirror through QEMU's NAT); the install takes 30-60 minutes without KVM.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.private_libvirtd import PrivateLibvirtd

pytestmark = [pytest.mark.install, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
LAB = "e2e-install"
NETBOOT = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64")


@pytest.fixture(scope="module")
def hypervisor():
    if not (NETBOOT / "linux").is_file():
        pytest.fail("debian-installer-12-netboot-amd64 is not installed: run `make deps`")
    daemon = PrivateLibvirtd(images_size="8G").start()
    yield daemon
    daemon.stop()


class InNamespace:
    """The vmlab CLI run inside the private daemon's mount namespace; each command's
    output also goes to ``log`` as it comes, to follow a long install."""

    def __init__(self, hypervisor: PrivateLibvirtd, env: dict[str, str], log: Path) -> None:
        assert hypervisor.holder is not None
        self.prefix = ["nsenter", "-t", str(hypervisor.holder.pid), "-m", f"--wd={REPO}", "--"]
        self.env = env
        self.log = log

    def __call__(self, *args: str, expect: int | None = 0,
                 timeout: float = 600) -> subprocess.CompletedProcess:
        with self.log.open("a") as log:
            log.write(f"\n$ vmlab {' '.join(args)}\n")
            log.flush()
            process = subprocess.Popen(self.prefix + [sys.executable, "-m", "vmlab", *args],
                                       env=self.env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True,
                                       stdin=subprocess.DEVNULL)
            lines = []
            assert process.stdout is not None
            deadline = time.monotonic() + timeout
            for line in process.stdout:
                lines.append(line)
                log.write(line)
                log.flush()
                if time.monotonic() > deadline:
                    process.kill()
            code = process.wait(timeout=60)
        output = "".join(lines)
        if expect is not None and code != expect:
            raise AssertionError(f"vmlab {' '.join(args)} exited {code}, expected {expect}\n"
                                 f"{output[-6000:]}")
        return subprocess.CompletedProcess(args, code, output, "")

    def json(self, *args: str):
        result = subprocess.run(self.prefix + [sys.executable, "-m", "vmlab", *args, "--json"],
                                env=self.env, capture_output=True, text=True, check=True,
                                stdin=subprocess.DEVNULL, timeout=300)
        return json.loads(result.stdout)


def test_preseed_install_then_prep_network_ntp(hypervisor, vmlab_home, tmp_path):
    profile = tmp_path / "e2e-install.yaml"
    profile.write_text("\n".join([
        "extends: zed-aio-debian12-preseed",
        "name: e2e-install",
        f"hypervisor: {{kind: libvirt, uri: {json.dumps(hypervisor.uri)}}}",
        "stages: [prep, network, ntp]",
        "snapshots: {mode: live}", ""]))
    log = tmp_path / "vmlab-output.log"
    print(f"\nvmlab's output: {log}")
    vmlab = InNamespace(hypervisor, vmlab_home, log)

    started = time.monotonic()
    created = vmlab("create", "--profile", str(profile), "--lab", LAB, timeout=4 * 3600)
    total = time.monotonic() - started
    output = created.stdout
    # the installer fetched its preseed and late script from the token path, then called back
    fetched = re.findall(r"install server: \S+ (GET|POST) /[\w-]+/(\S+) (\d+)", output)
    assert ("GET", "preseed.cfg", "200") in fetched, output[-4000:]
    assert ("GET", "late.sh", "200") in fetched and ("POST", "done", "200") in fetched
    status = vmlab.json("status", "--lab", LAB)
    assert [(r["name"], r["status"]) for r in status["stages"]] == [
        ("prep", "done"), ("network", "done"), ("ntp", "done")]
    stage_times = ", ".join(f"{r['name']} {r['duration']:.0f}s" for r in status["stages"])
    print(f"create (install + prep, network, ntp) took {total / 60:.1f} min; {stage_times}")

    def guest(command: str) -> str:
        return vmlab("ssh", "--lab", LAB, "--", command).stdout

    # booted from the installed disk, not the installer's kernel
    assert "auto=true" not in guest("cat /proc/cmdline")
    domain = hypervisor.virsh("dumpxml", f"vmlab-{LAB}")
    assert "<kernel>" not in domain and "<cmdline>" not in domain
    assert guest("cat /etc/debian_version").startswith("12.")
    assert "vmlab at install time" in guest("cat /etc/network/interfaces")
    assert " 192.168.70.2/24 " in guest("ip -o -4 addr show")
    assert guest("hostname").strip() == "controller"
    assert "nameserver 10.0.2.3" in guest("cat /etc/resolv.conf")  # after network's reboot
    assert guest("systemctl is-active chrony").strip() == "active"
    assert guest("getent hosts controller").split()[0] == "192.168.70.2"

    vmlab("destroy", "--lab", LAB, "--yes")
    assert f"vmlab-{LAB}" not in hypervisor.virsh("list", "--all", "--name").split()

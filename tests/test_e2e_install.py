"""`make e2e-install`: a real unattended install onto vmlab's libvirt networks.

debian-installer boots from Debian's netboot kernel on a NAT provider network (DHCP from
libvirt's dnsmasq) and an isolated management network, as newton-aio defines them; it fetches
its preseed from vmlab's install server on the NAT network's address, installs Debian 13 from
the mirror, calls back from late_command and powers off; vmlab switches the VM to its disk
and runs the Debian twin's prep, network and ntp stages over the management address
192.168.70.2. Everything runs in the test's network namespace (tests/netns_fixtures.py):
the host's interfaces, routes and firewall rules are the same afterwards.

vmlab runs inside the private daemon's namespaces, where the serial console log is, and
shows the installer's progress from it. The install takes 30-60 minutes without KVM.

The installer downloads its own components (udebs) from the mirror. The Debian mirror here
lists them but does not serve all of them, so the install's mirror is the archive
tests/installer_archive.py makes from what it does serve, on the namespace's own address
(the missing udebs rebuilt from regular packages; everything else passed through). With
``VMLAB_E2E_MIRROR`` (``host/directory`` of a complete mirror) the install is Debian 12's,
from that mirror and the debian-installer-12-netboot-amd64 package, as a user's would be.
The first test needs no complete mirror: a real installer boot that fetches its preseed
and then runs past a short install timeout, which must be an error quoting the console.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from tests import host_network, installer_archive
from tests.lab_harness import test_cache_dir
from tests.private_libvirtd import NAMESPACE_ADDRESS, PrivateLibvirtd
from vmlab.profileinstall import PreseedInstall

pytestmark = [pytest.mark.install, pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
LAB = "e2e-install"
#: what debian-installer-12-netboot-amd64 installs (`make deps`)
NETBOOT = PreseedInstall(method="preseed").netboot_folder


#: where the namespace serves the installer archive (apt-cacher-ng's port)
ARCHIVE_PORT = 3142


def mirror_settings() -> list[str]:
    """The profile's install mirror lines, from VMLAB_E2E_MIRROR (host/directory)."""
    host, _, directory = os.environ.get("VMLAB_E2E_MIRROR", "deb.debian.org/debian") \
        .partition("/")
    return [f"  mirror_host: {host}", f"  mirror_directory: /{directory}"]


@pytest.fixture
def install_source(netns_libvirtd, tmp_path_factory, tmp_path) -> Iterator[list[str]]:
    """The full install's profile lines: Debian 13 from the installer archive served in the
    namespace, or Debian 12 from VMLAB_E2E_MIRROR."""
    if os.environ.get("VMLAB_E2E_MIRROR"):
        yield ["extends: zed-aio-debian12-preseed", "install:", *mirror_settings()]
        return
    started = time.monotonic()
    archive = installer_archive.build(test_cache_dir(tmp_path_factory) / "installer-archive",
                                      "trixie", log=lambda line: print(f"archive: {line}"))
    print(f"archive: ready in {time.monotonic() - started:.0f} s at {archive.root}; rebuilt "
          f"{len(archive.rebuilt)} udebs, netboot kernel {archive.kernel_release}")
    requests = tmp_path / "installer-archive-requests.log"
    server = subprocess.Popen(
        netns_libvirtd.command([sys.executable, "-m", "tests.installer_archive",
                                str(archive.root), "--port", str(ARCHIVE_PORT),
                                "--log", str(requests)], cwd=REPO),
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("serving "), "the archive did not start"
        yield ["extends: epoxy-aio-debian13-preseed", "install:",
               f"  netboot_dir: {archive.netboot}",
               f"  mirror_host: {NAMESPACE_ADDRESS}:{ARCHIVE_PORT}",
               "  mirror_directory: /debian"]
    finally:
        server.terminate()
        server.wait(10)
        print(f"archive: requests in {requests}")


class InNamespace:
    """The vmlab CLI run inside the namespaces; each command's output also goes to ``log``
    as it comes, to follow a long install."""

    def __init__(self, hypervisor: PrivateLibvirtd, env: dict[str, str], log: Path) -> None:
        self.prefix = [*hypervisor.nsenter(REPO), "--"]
        self.env = env
        self.log = log

    def __call__(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        with self.log.open("a") as log:
            log.write(f"\n$ vmlab {' '.join(args)}\n")
            log.flush()
            process = subprocess.Popen([*self.prefix, sys.executable, "-m", "vmlab", *args],
                                       env=self.env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True,
                                       stdin=subprocess.DEVNULL)
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                log.write(line)
                log.flush()
            code = process.wait()
        output = "".join(lines)
        if expect is not None and code != expect:
            raise AssertionError(f"vmlab {' '.join(args)} exited {code}, expected {expect}\n"
                                 f"{output[-6000:]}")
        return subprocess.CompletedProcess(args, code, output, "")

    def json(self, *args: str):
        result = subprocess.run([*self.prefix, sys.executable, "-m", "vmlab", *args, "--json"],
                                env=self.env, capture_output=True, text=True, check=True,
                                stdin=subprocess.DEVNULL, timeout=300)
        return json.loads(result.stdout)


@pytest.fixture(autouse=True)
def netboot_files():
    if not (NETBOOT / "linux").is_file():
        pytest.fail("debian-installer-12-netboot-amd64 is not installed: run `make deps`")


def test_the_installer_boots_fetches_its_preseed_and_a_timeout_quotes_its_console(
        netns_libvirtd, vmlab_home, tmp_path):
    hypervisor = netns_libvirtd
    profile = tmp_path / "e2e-install-boot.yaml"
    profile.write_text("\n".join([
        "extends: zed-aio-debian12-preseed",
        "name: e2e-install-boot",
        "install:", "  install_timeout_minutes: 5", *mirror_settings(),
        "stages: []", ""]))
    vmlab = InNamespace(hypervisor, vmlab_home, tmp_path / "vmlab-output.log")
    started = time.monotonic()
    failed = vmlab("create", "--profile", str(profile), "--lab", "e2e-boot", "--no-preflight",
                   expect=3)
    print(f"\ninstaller boot and a 5-minute install timeout: "
          f"{(time.monotonic() - started) / 60:.1f} min")
    output = failed.stdout
    # the provider NIC got its address from the NAT network's dnsmasq, and the installer
    # fetched its preseed from the token path on that network's address
    fetched = re.findall(r"install server: (192\.168\.123\.\d+) GET /[\w-]+/preseed\.cfg 200",
                         output)
    assert fetched, output[-4000:]
    assert "installing the OS (preseed): " in output and ", console: " in output
    assert "the preseed install did not finish in 5 min; the console's last lines (" in output
    quoted = output[output.index("the console's last lines ("):]
    assert len(quoted.splitlines()) > 5
    # the failed create removed what it made
    assert "vmlab-e2e-boot" not in hypervisor.virsh("list", "--all", "--name").split()
    assert "vmlab-provider" not in hypervisor.virsh("net-list", "--all", "--name").split()


def test_preseed_install_on_libvirt_networks_then_prep_network_ntp(
        netns_libvirtd, vmlab_home, host_network_before, install_source, tmp_path):
    hypervisor = netns_libvirtd
    profile = tmp_path / "e2e-install.yaml"
    profile.write_text("\n".join([
        *install_source, "name: e2e-install", "stages: [prep, network, ntp]", ""]))
    debian = "12." if "zed-aio-debian12-preseed" in install_source[0] else "13."
    log = tmp_path / "vmlab-output.log"
    print(f"\nvmlab's output: {log}")
    vmlab = InNamespace(hypervisor, vmlab_home, log)

    started = time.monotonic()
    output = vmlab("create", "--profile", str(profile), "--lab", LAB).stdout
    total = time.monotonic() - started
    # the installer fetched its preseed and late script from the token path on the NAT
    # network's address, then called back
    fetched = re.findall(r"install server: 192\.168\.123\.\d+ (GET|POST) /[\w-]+/(\S+) (\d+)",
                         output)
    assert ("GET", "preseed.cfg", "200") in fetched, output[-4000:]
    assert ("GET", "late.sh", "200") in fetched and ("POST", "done", "200") in fetched
    assert re.search(r"installing the OS \(preseed\): done|installing the OS \(preseed\) "
                     r"\.\.\.", output)
    status = vmlab.json("status", "--lab", LAB)
    assert [(r["name"], r["status"]) for r in status["stages"]] == [
        ("prep", "done"), ("network", "done"), ("ntp", "done")]
    stage_seconds = sum(r["duration"] or 0 for r in status["stages"])
    print(f"create took {total / 60:.1f} min: the install and first boot "
          f"{(total - stage_seconds) / 60:.1f} min, then "
          + ", ".join(f"{r['name']} {r['duration']:.0f}s" for r in status["stages"]))

    def guest(command: str) -> str:
        return vmlab("ssh", "--lab", LAB, "--", command).stdout

    # booted from the installed disk, not the installer's kernel
    assert "auto=true" not in guest("cat /proc/cmdline")
    domain = hypervisor.virsh("dumpxml", f"vmlab-{LAB}")
    assert "<kernel>" not in domain and "<cmdline>" not in domain
    assert guest("cat /etc/debian_version").startswith(debian)
    # the NICs are libvirt network interfaces; the provider's address is a dnsmasq lease
    domiflist = hypervisor.virsh("domiflist", f"vmlab-{LAB}")
    assert "vmlab-provider" in domiflist and "vmlab-management" in domiflist
    leases = hypervisor.virsh("net-dhcp-leases", "vmlab-provider")
    assert "192.168.123." in leases
    addresses = guest("ip -o -4 addr show")
    assert " 192.168.70.2/24 " in addresses and " 192.168.123." in addresses
    assert guest("ip route show default").startswith("default via 192.168.123.1 ")
    assert "vmlab at install time" in guest("cat /etc/network/interfaces")
    assert guest("hostname").strip() == "controller"
    # after the network stage's reboot, the file it wrote: not one a DHCP client made
    resolv = guest("cat /etc/resolv.conf")
    assert resolv.startswith("# Written by vmlab") and "nameserver 192.168.123.1" in resolv
    assert guest("getent hosts controller").split()[0] == "192.168.70.2"
    assert guest("systemctl is-active chrony").strip() == "active"
    assert "192.168.123.1" in guest("chronyc -n sources")

    vmlab("destroy", "--lab", LAB, "--yes")
    assert f"vmlab-{LAB}" not in hypervisor.virsh("list", "--all", "--name").split()
    assert "vmlab-provider" not in hypervisor.virsh("net-list", "--all", "--name").split()
    changed = host_network_before.differences(host_network.snapshot())
    assert not changed, "\n".join(changed)

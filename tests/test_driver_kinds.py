"""What each driver knows before it connects (vmlab.drivers.kinds): its options from a
profile's hypervisor section, its URI, its capabilities and its network rules, asked by
kind, with no hypervisor library loaded."""
from __future__ import annotations

import ipaddress
import json
import subprocess
import sys

import pytest

from tests.lab_harness import REPO
from vmlab import drivers
from vmlab.drivers.base import NetworkSpec
from vmlab.errors import UsageError
from vmlab.profile import LibvirtHypervisor, VsphereHypervisor

VSPHERE = VsphereHypervisor(kind="vsphere", host="vc.example", user="lab@vsphere.local",
                            password_env="TEST_VSPHERE_PW").model_dump(mode="json")
LIBVIRT = LibvirtHypervisor(kind="libvirt", uri="qemu+ssh://root@hv/system",
                            pool="labs").model_dump(mode="json")


def network(kind: str, subnet: str) -> NetworkSpec:
    net = ipaddress.ip_network(subnet)
    return NetworkSpec(kind, "n", net, next(net.hosts()))  # type: ignore[arg-type]


def test_the_vsphere_password_comes_from_the_variable_the_section_names(monkeypatch):
    monkeypatch.setenv("TEST_VSPHERE_PW", "it's \"$HOME\"")
    options = drivers.kind("vsphere").options(VSPHERE)
    assert options["password"] == "it's \"$HOME\""
    assert options["host"] == "vc.example" and options["port"] == 443
    monkeypatch.delenv("TEST_VSPHERE_PW")
    with pytest.raises(UsageError, match=r"\$TEST_VSPHERE_PW is not set") as caught:
        drivers.kind("vsphere").options(VSPHERE)
    assert caught.value.hint == "export TEST_VSPHERE_PW=... and run again"


def test_each_kind_names_its_uri_and_options():
    assert drivers.kind("vsphere").uri(VSPHERE) == "vsphere://lab@vsphere.local@vc.example:443"
    assert drivers.kind("libvirt").uri(LIBVIRT) == "qemu+ssh://root@hv/system"
    assert drivers.kind("libvirt").options(LIBVIRT) == {"uri": "qemu+ssh://root@hv/system",
                                                        "pool": "labs"}


def test_an_unknown_kind_is_a_usage_error_naming_the_known_ones():
    with pytest.raises(UsageError, match="unknown hypervisor kind 'xen'") as caught:
        drivers.kind("xen")
    assert caught.value.hint == "use one of: libvirt, vsphere"


def test_where_a_guest_finds_this_machine_and_its_resolver():
    libvirt, vsphere = drivers.kind("libvirt"), drivers.kind("vsphere")
    user, nat = network("user", "10.0.2.0/24"), network("nat", "192.168.123.0/24")
    assert libvirt.host_address(user) == ("127.0.0.1", "10.0.2.2")  # qemu's user mode
    assert libvirt.guest_resolver(user) == ipaddress.ip_address("10.0.2.3")
    assert libvirt.host_address(nat) == ("192.168.123.1", "192.168.123.1")
    assert libvirt.guest_resolver(nat) == ipaddress.ip_address("192.168.123.1")
    assert vsphere.guest_resolver(nat) is None  # the DHCP lease's servers


def test_capabilities_say_what_install_media_a_kind_takes():
    libvirt, vsphere = drivers.kind("libvirt"), drivers.kind("vsphere")
    assert libvirt.capabilities.kernel_boot and libvirt.capabilities.disk_from_image
    assert not vsphere.capabilities.kernel_boot and not vsphere.capabilities.disk_from_image
    assert vsphere.capabilities.guest_packages == ("open-vm-tools",)


def test_asking_a_kind_loads_no_hypervisor_library():
    code = ("import json, sys; from vmlab import drivers; "
            "[drivers.kind(k).capabilities for k in drivers.KINDS]; "
            "print(json.dumps(sorted(sys.modules)))")
    modules = json.loads(subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                                        capture_output=True, text=True).stdout)
    assert not [m for m in modules if m.split(".")[0] in ("libvirt", "pyVmomi", "pyVim",
                                                          "pydantic")]
    assert "vmlab.drivers.vsphere.driver" not in modules
    assert "vmlab.drivers.libvirt.driver" not in modules

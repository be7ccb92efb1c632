"""The preflight against the real libvirtd: its networks (one defined here for the test, never
started, so no bridge appears on the host), this machine's real routes, the pool, memory and
CPUs. Nothing is made: the checks only read."""
from __future__ import annotations

import os
import textwrap

import pytest

from tests.lab_harness import virsh
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.drivers.libvirt.networks import host_routes
from vmlab.errors import DriverError
from vmlab.preflight import run
from vmlab.profile import load_profile
from vmlab.vmspec import nic_specs

pytestmark = pytest.mark.e2e

SUBNET = "10.213.7.0/24"


@pytest.fixture
def home(tmp_path, monkeypatch):
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


@pytest.fixture
def defined_network(libvirtd, tmp_path):
    """A network defined on the real libvirtd and left stopped (no bridge on the host)."""
    name = f"vmlab-pf{os.getpid()}"
    xml = tmp_path / "network.xml"
    xml.write_text(f"<network><name>{name}</name>"
                   "<ip address='10.213.7.1' netmask='255.255.255.0'/></network>\n")
    virsh("net-define", str(xml))
    try:
        yield name
    finally:
        virsh("net-undefine", name)


def bridged_profile(home, subnet: str):
    path = home / "bridged.yaml"
    path.write_text(textwrap.dedent(f"""\
        extends: demo
        name: bridged
        vm:
          nics:
            - {{role: provider, network: nat, network_name: vmlab-pf-provider, subnet: {subnet}}}
            - {{role: management, network: user, subnet: 192.168.70.0/24,
                address: 192.168.70.2}}
        """))
    return load_profile(str(path))


def test_a_subnet_of_a_defined_network_is_refused_and_nothing_is_made(home, defined_network,
                                                                      libvirtd):
    before = virsh("net-list", "--all", "--name").split()
    loaded = bridged_profile(home, SUBNET)
    report = run("bridged", loaded, urls=False)
    failed = {check.name: check for check in report.failures}
    check = failed[f"provider network vmlab-pf-provider ({SUBNET})"]
    assert f"libvirt network '{defined_network}' (10.213.7.0/24, defined, not running" in \
        check.detail
    assert "`subnet: 10.213.8.0/24`" in check.fix
    with LibvirtDriver(libvirtd) as driver:
        with pytest.raises(DriverError, match=defined_network):
            driver.ensure_networks(nic_specs("bridged", loaded.profile))
    assert virsh("net-list", "--all", "--name").split() == before


def test_a_subnet_routed_on_this_machine_is_refused(home, libvirtd):
    routes = host_routes()
    assert routes, "this machine has no route besides the default one"
    route = routes[0]
    report = run("bridged", bridged_profile(home, str(route.destination)), urls=False)
    details = [check.detail for check in report.failures]
    assert any(f"host route {route.destination} dev {route.device}" in d for d in details), \
        details


def test_the_demo_profile_passes_on_the_real_libvirtd(home, libvirtd):
    report = run("demo", load_profile("demo"), urls=False)
    assert report.failures == [], report.failures
    checks = {check.name: check for check in report.checks}
    assert checks["libvirt"].detail.startswith(f"{libvirtd} answers (libvirt ")
    assert checks["acceleration"].status in ("ok", "warn")  # KVM, or TCG said plainly
    assert checks["memory"].status == "ok" and checks["CPUs"].status == "ok"
    assert checks["storage pool vmlab"].status in ("ok", "warn")
    assert report.seconds < 10

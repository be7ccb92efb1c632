"""The libvirt driver's networks step: collisions with other libvirt networks and the host's
routes are refused before anything is made, with a free subnet to use instead; networks made
before the VM is defined belong to it. On libvirt's test driver, one host file per test;
the host's routes come from a stand-in `ip` on PATH."""
from __future__ import annotations

import ipaddress
import json
import os
import stat
import sys

import pytest

from tests.mirror import DEFAULT_NETWORK, host_xml
from vmlab.drivers.base import DiskSpec, NetworkSpec, NicSpec, VMSpec
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.drivers.libvirt.networks import free_subnet, host_routes
from vmlab.errors import DriverError

net = ipaddress.ip_network


def nic(role, kind, name: str, subnet: str) -> NicSpec:
    network = NetworkSpec(kind, name, net(subnet), next(net(subnet).hosts()), dhcp=kind == "nat")
    return NicSpec(role, network, f"52:54:00:00:30:0{1 if role == 'provider' else 2}")


def newton_nics(provider: str = "192.168.122.0/24", name: str = "vmlab-provider"):
    return (nic("provider", "nat", name, provider),
            nic("management", "isolated", "vmlab-management", "192.168.70.0/24"))


def network_names(driver: LibvirtDriver) -> set[str]:
    return {n.name() for n in driver.conn.listAllNetworks()}


@pytest.fixture
def fake_ip(tmp_path, monkeypatch):
    """An `ip` on PATH that prints the routes a test gives (as `ip -j -4 route` does)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    routes_file = tmp_path / "routes.json"
    script = bindir / "ip"
    script.write_text(f"#!{sys.executable}\nimport sys\n"
                      f"sys.stdout.write(open({str(routes_file)!r}).read())\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")

    def set_routes(*rows: dict) -> None:
        routes_file.write_text(json.dumps(list(rows)))

    set_routes()
    return set_routes


@pytest.fixture
def host(tmp_path, fake_ip):
    """A test-driver host with libvirt's usual `default` network running on virbr0."""
    path = host_xml(tmp_path / "host.xml", networks=DEFAULT_NETWORK)
    with LibvirtDriver(f"test://{path}") as driver:
        yield driver


def test_a_subnet_of_a_running_network_is_refused_naming_it_and_a_free_one(host):
    before = network_names(host)
    with pytest.raises(DriverError) as info:
        host.ensure_networks(newton_nics())
    message, hint = info.value.message, info.value.hint
    assert "'vmlab-provider' (192.168.122.0/24) overlaps libvirt network 'default' " \
           "(192.168.122.0/24, running, bridge virbr0)" in message
    assert "`subnet: 192.168.123.0/24`" in hint and "`network_name: default`" in hint
    assert "vmlab-management" not in message  # 192.168.70.0/24 is free
    assert network_names(host) == before  # nothing made, not even the free one


def test_an_overlap_that_is_not_equal_is_refused_too(host):
    found = host.network_collisions(newton_nics(provider="192.168.0.0/16"))
    assert [c.role for c in found] == ["provider"]
    assert "overlaps libvirt network 'default'" in found[0].problem
    free = net(found[0].fix.split("`subnet: ")[1].split("`")[0])
    assert not free.overlaps(net("192.168.122.0/24")) and free.prefixlen == 16


def test_the_network_of_the_same_name_is_reused_as_it_is(host):
    made = host.ensure_networks(newton_nics(name="default"))
    assert made == ["vmlab-management"]  # default was there: not made, so not vmlab's
    host.remove_networks(made)
    assert network_names(host) == {"default"}


def test_a_reused_network_must_have_the_profiles_subnet(host):
    found = host.network_collisions(newton_nics(provider="10.5.0.0/24", name="default"))
    assert "libvirt network 'default' (192.168.122.0/24, running, bridge virbr0) exists, but " \
           "the profile gives the provider NIC subnet 10.5.0.0/24" in found[0].problem
    assert "set the provider NIC's subnet to 192.168.122.0/24" in found[0].fix


def test_a_reused_network_that_is_not_running_says_how_to_start_it(host):
    host.conn.networkLookupByName("default").destroy()
    found = host.network_collisions(newton_nics(name="default"))
    assert "is not running" in found[0].problem
    assert found[0].fix == f"start it: virsh -c {host.uri} net-start default"


def test_a_network_that_is_defined_but_stopped_still_collides(host):
    host.conn.networkLookupByName("default").destroy()
    found = host.network_collisions(newton_nics())
    assert "(192.168.122.0/24, defined, not running, bridge virbr0)" in found[0].problem


def test_a_host_route_collides_and_the_suggestion_avoids_it(host, fake_ip):
    fake_ip({"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
            {"dst": "10.20.0.0/16", "dev": "eth1", "protocol": "kernel"},
            {"dst": "10.21.0.0/24", "dev": "wg0"},
            {"dst": "10.22.0.0/24", "dev": "eth1", "type": "blackhole"})
    found = host.network_collisions(newton_nics(provider="10.20.7.0/24"))
    assert "overlaps host route 10.20.0.0/16 dev eth1" in found[0].problem
    assert "`subnet: 10.20.8.0/24`" not in found[0].fix  # inside the route too
    suggested = net(found[0].fix.split("`subnet: ")[1].split("`")[0])
    assert not any(suggested.overlaps(net(s)) for s in ("10.20.0.0/16", "10.21.0.0/24",
                                                        "192.168.122.0/24", "192.168.70.0/24"))
    assert not host.network_collisions(newton_nics(provider="10.23.0.0/24"))  # default route
    # and a blackhole route are no collision


def test_the_route_of_a_libvirt_bridge_is_reported_as_its_network(host, fake_ip):
    fake_ip({"dst": "192.168.122.0/24", "dev": "virbr0", "protocol": "kernel"})
    found = host.network_collisions(newton_nics())
    assert "host route" not in found[0].problem and "network 'default'" in found[0].problem
    # reusing `default` is fine although its route is on the host
    assert not host.network_collisions(newton_nics(name="default"))


def test_host_routes_are_read_from_ip(fake_ip):
    fake_ip({"dst": "default", "dev": "eth0"}, {"dst": "192.0.2.0/24", "dev": "eth0"},
            {"dst": "198.51.100.7", "dev": "tun0"})
    assert [(str(r.destination), r.device) for r in host_routes()] == [
        ("192.0.2.0/24", "eth0"), ("198.51.100.7/32", "tun0")]


def test_unreadable_routes_are_none_not_an_empty_list(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `ip` at all
    assert host_routes() is None


def test_a_remote_hypervisors_routes_are_not_read(host, fake_ip, monkeypatch):
    fake_ip({"dst": "10.20.0.0/16", "dev": "eth1"})
    monkeypatch.setattr(LibvirtDriver, "remote_host", property(lambda self: "hv.example"))
    assert not host.network_collisions(newton_nics(provider="10.20.7.0/24"))
    spec = VMSpec(name="vmlab-r", lab="r", cpus=1, memory_mib=512, disk=DiskSpec(1),
                  nics=newton_nics(provider="10.20.7.0/24"))
    routes = [c for c in host.preflight(spec) if c.name == "host routes"]
    assert routes[0].status == "warn" and "not checked: the hypervisor is hv.example" in \
        routes[0].detail


@pytest.mark.parametrize("wanted, taken, expected", [
    ("192.168.122.0/24", ["192.168.122.0/24"], "192.168.123.0/24"),
    ("192.168.122.0/24", ["192.168.122.0/24", "192.168.123.0/24", "192.168.124.0/22"],
     "192.168.128.0/24"),
    ("192.168.255.0/24", ["192.168.255.0/24"], "192.168.0.0/24"),  # wraps round its block
    ("192.168.0.0/16", ["192.168.0.0/16"], "172.16.0.0/16"),  # then the next block
    ("172.31.255.0/24", ["172.16.0.0/12"], "192.168.0.0/24"),
    ("192.168.0.0/16", ["192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8"], None),
    ("10.0.0.0/7", ["10.0.0.0/8"], None),  # larger than any private block
])
def test_free_subnet(wanted, taken, expected):
    found = free_subnet(net(wanted), [net(t) for t in taken])
    assert (str(found) if found else None) == expected


# -- networks made before the VM belong to it -------------------------------------------------

def test_networks_made_before_the_vm_go_with_it(tmp_path, fake_ip):
    with LibvirtDriver(f"test://{host_xml(tmp_path / 'host.xml')}") as driver:
        nics = newton_nics(provider="10.91.0.0/24")
        made = driver.ensure_networks(nics)
        assert made == ["vmlab-provider", "vmlab-management"]
        assert all(driver.conn.networkLookupByName(n).isActive() for n in made)
        spec = VMSpec(name="vmlab-owns", lab="owns", cpus=1, memory_mib=128,
                      disk=DiskSpec(1), nics=nics, networks_made=tuple(made))
        ref = driver.create(spec)
        assert {o.name for o in driver.list_owned() if o.kind == "network"} == set(made)
        driver.destroy(ref)
        assert network_names(driver) == set()


def test_a_failed_create_keeps_the_networks_it_did_not_make(tmp_path, fake_ip):
    with LibvirtDriver(f"test://{host_xml(tmp_path / 'host.xml')}") as driver:
        nics = newton_nics(provider="10.91.0.0/24")
        made = driver.ensure_networks(nics)
        spec = VMSpec(name="vmlab-broken", lab="broken", cpus=1, memory_mib=128,
                      disk=DiskSpec(1), nics=nics, networks_made=tuple(made),
                      cdroms=(tmp_path / "missing.iso",))
        with pytest.raises(DriverError, match="does not exist"):
            driver.create(spec)
        assert network_names(driver) == set(made)  # the caller's to remove
        driver.remove_networks(made)
        assert network_names(driver) == set()


def test_a_network_a_vm_uses_is_not_removed(tmp_path, fake_ip):
    with LibvirtDriver(f"test://{host_xml(tmp_path / 'host.xml')}") as driver:
        nics = newton_nics(provider="10.91.0.0/24")
        made = driver.ensure_networks(nics)
        ref = driver.create(VMSpec(name="vmlab-user", lab="user", cpus=1, memory_mib=128,
                                   disk=DiskSpec(1), nics=nics))
        driver.remove_networks(made)
        assert network_names(driver) == set(made)
        driver.destroy(ref)


def test_a_network_that_fails_to_start_is_not_left_defined(tmp_path, fake_ip):
    with LibvirtDriver(f"test://{host_xml(tmp_path / 'host.xml')}") as driver:
        nics = newton_nics(provider="10.91.0.0/24")
        original = driver.conn.networkDefineXML
        calls = []

        def define_then_break(xml):
            calls.append(xml)
            network = original(xml)
            if len(calls) == 2:  # the second network cannot start
                network.create()
            return network
        driver.conn.networkDefineXML = define_then_break  # type: ignore[method-assign]
        with pytest.raises(DriverError, match="starting network vmlab-management failed"):
            driver.ensure_networks(nics)
        assert network_names(driver) == set()  # the first one went again too


def test_the_shipped_newton_aio_fits_beside_libvirts_default_network(host):
    from vmlab.profile import load_profile
    from vmlab.vmspec import nic_specs

    nics = nic_specs("newton-aio", load_profile("newton-aio").profile)
    assert host.network_collisions(nics) == []
    made = host.ensure_networks(nics)
    assert sorted(made) == ["vmlab-management", "vmlab-provider"]
    host.remove_networks(made)

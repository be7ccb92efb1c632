"""`create` of a kickstart (or preseed) lab in the right order: the networks are made and
started, then the install server listens on the provider network's address, then the
kickstart is rendered with the server's URL, then the VM is defined; and a failure anywhere
removes what was made.

Runs the real orchestration on libvirt's test driver. The test driver makes no host
interfaces, so the host is simulated where it matters: an address exists (the install server
can listen on it) only while a network of the test driver that has it is running, as on a
real host. The server itself then listens on 127.0.0.1.
"""
from __future__ import annotations

import errno
import textwrap

import pytest

from tests.libvirt_test_driver import record_uploads
from tests.mirror import DEFAULT_NETWORK, Mirror, boot_iso, closed_port, host_xml, newton_profile
from vmlab import lab as labs
from vmlab.create import create as create_lab
from vmlab import paths
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.drivers.libvirt.networks import existing_networks
from vmlab.errors import InfrastructureError, VmlabError
from vmlab.install import INSTALL_PORTS, open_install_server
from vmlab.installserver import InstallServer
from vmlab.preflight import serving


class Booted(VmlabError):
    """Stands in for the install boot: the test stops the create there."""


class SharedDriver(LibvirtDriver):
    """One test-driver connection for the whole create (each test:// connection has its own
    state), closed by the test rather than by each `with`."""

    def close(self) -> None:
        return None


@pytest.fixture
def home(tmp_path, monkeypatch):
    """vmlab's directories in tmp_path, on a simulated host without routes of its own."""
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setattr("vmlab.drivers.libvirt.networks.host_routes", lambda: [])
    return tmp_path


@pytest.fixture
def host(home, monkeypatch):
    record_uploads(monkeypatch)  # the kernel, initrd and ISO: the test driver holds none
    driver = SharedDriver(f"test://{host_xml(home / 'host.xml')}")
    monkeypatch.setattr(labs, "open_driver", lambda hypervisor: driver)
    yield driver
    LibvirtDriver.close(driver)


def host_addresses(driver: LibvirtDriver) -> set[str]:
    return {str(address) for network in existing_networks(driver.conn) if network.active
            for address in network.addresses}


@pytest.fixture
def events(host, monkeypatch):
    """What happened, in order; binding fails on an address the host does not have."""
    happened: list[tuple] = []
    original_init = InstallServer.__init__

    def listen_on_simulated_host(self, bind, files, **options):
        if bind not in host_addresses(host) | {"127.0.0.1"}:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        happened.append(("listen", bind))
        original_init(self, "127.0.0.1", files, **{"url_host": bind, **options})

    monkeypatch.setattr(InstallServer, "__init__", listen_on_simulated_host)
    monkeypatch.setattr(serving, "address_is_local",
                        lambda address: address in host_addresses(host))
    original_create = host.create

    def create(spec, progress=lambda _: None):
        happened.append(("define VM", spec.boot.cmdline if spec.boot else None,
                         {n.name() for n in host.conn.listAllNetworks() if n.isActive()}))
        return original_create(spec, progress)

    monkeypatch.setattr(host, "create", create)

    def boot(driver, ref, prepared, progress):
        happened.append(("boot", ref.name))
        raise Booted("stopped at the install boot")

    monkeypatch.setattr("vmlab.install.run_install", boot)
    return happened


def kickstart_profile(home, **options):
    iso, sha256 = boot_iso(home / "boot.iso")
    cache = paths.cache_dir() / "isos"
    cache.mkdir(parents=True)
    cached = cache / "CentOS-7-x86_64-Minimal-2009.iso"
    cached.write_bytes(iso.read_bytes())
    (cache / f"{cached.name}.sha256").write_text(f"{sha256}  {cached.name}\n")
    return newton_profile(home / "order.yaml", Mirror(home, closed_port()), "test:///unused",
                          iso_sha256=sha256, **options)


def test_networks_then_install_server_then_kickstart_then_vm(home, host, events):
    profile = kickstart_profile(home)
    with pytest.raises(Booted):
        create_lab(str(profile), "order", provision=False, check_urls=False)
    listen, define, boot = events
    assert listen == ("listen", "10.91.0.1")  # the provider network's address: it existed
    cmdline, running = define[1], define[2]
    assert f"inst.ks=http://10.91.0.1:{INSTALL_PORTS[0]}/" in cmdline
    assert running == {"vmlab-provider", "vmlab-management"}
    assert boot == ("boot", "vmlab-order")
    # the failed create removed the VM, the networks it made and the lab's files
    assert host.conn.listAllDomains(0) == []
    assert host.conn.listAllNetworks() == []
    assert not (paths.labs_dir() / "order").exists()


def test_a_failure_before_the_vm_removes_the_networks_made_for_it(home, host, events,
                                                                   monkeypatch):
    profile = kickstart_profile(home)

    def broken_iso(*args, **kwargs):
        raise InfrastructureError("the ISO is gone")

    monkeypatch.setattr("vmlab.iso.fetch_iso", broken_iso)
    with pytest.raises(InfrastructureError, match="the ISO is gone"):
        create_lab(str(profile), "early", provision=False, check_urls=False)
    assert events == []
    assert host.conn.listAllNetworks() == [] and host.conn.listAllDomains(0) == []
    assert not (paths.labs_dir() / "early").exists()


def test_a_colliding_subnet_stops_create_before_anything_is_made(home, monkeypatch):
    # a host whose libvirt has its usual `default` network on 192.168.122.0/24
    driver = SharedDriver(f"test://{host_xml(home / 'host.xml', networks=DEFAULT_NETWORK)}")
    monkeypatch.setattr(labs, "open_driver", lambda hypervisor: driver)
    profile = kickstart_profile(home, provider="192.168.122.0/24")
    try:
        with pytest.raises(VmlabError) as info:
            create_lab(str(profile), "collide", provision=False, check_urls=False)
        assert "preflight: 1 check failed; nothing was made" in info.value.message
        assert any("overlaps libvirt network 'default'" in p for p in info.value.problems)
        assert "`subnet: 192.168.123.0/24`" in info.value.hint
        assert [n.name() for n in driver.conn.listAllNetworks()] == ["default"]
        assert driver.conn.listAllDomains(0) == [] and driver.conn.listAllStoragePools() == []
        assert not paths.labs_dir().exists() and not (paths.state_dir() / "failed").exists()
    finally:
        LibvirtDriver.close(driver)


# -- the install server's ports --------------------------------------------------------------

def test_listening_on_an_address_this_machine_lacks_is_a_clear_error():
    address = "198.51.100.7"  # TEST-NET-2: on no interface
    with pytest.raises(InfrastructureError, match=f"cannot listen on {address}: no interface"):
        open_install_server(address, address)


def test_a_taken_port_moves_the_server_to_the_next_one():
    with open_install_server("127.0.0.1", "127.0.0.1") as first, \
            open_install_server("127.0.0.1", "127.0.0.1") as second:
        assert (first.port, second.port) == (INSTALL_PORTS[0], INSTALL_PORTS[1])
        assert serving.first_free_port("127.0.0.1") == INSTALL_PORTS[2]


def test_an_address_that_does_not_exist_yet_still_gets_the_first_port():
    assert serving.first_free_port("198.51.100.7") == INSTALL_PORTS[0]


def test_a_preseed_lab_boots_the_installer_with_the_servers_token_url(home, host, events,
                                                                      tmp_path):
    """The same order for debian-installer: the server on the NAT network's address, the
    installer's kernel told to fetch its preseed from the server's token path."""
    netboot = tmp_path / "netboot"
    netboot.mkdir()
    for name in ("linux", "initrd.gz"):
        (netboot / name).write_bytes(b"fake")
    profile = tmp_path / "preseed-order.yaml"
    profile.write_text(textwrap.dedent(f"""\
        extends: zed-aio-debian12-preseed
        name: preseed-order
        hypervisor: {{kind: libvirt, uri: "test:///unused"}}
        install: {{netboot_dir: {netboot}}}
        vm:
          nics:
            - {{role: provider, network: nat, network_name: vmlab-provider,
                subnet: 10.91.0.0/24}}
            - {{role: management, network: isolated, network_name: vmlab-management,
                subnet: 192.168.70.0/24, address: 192.168.70.2}}
        """))
    with pytest.raises(Booted):
        create_lab(str(profile), "pre", provision=False, check_urls=False)
    listen, define, boot = events
    assert listen == ("listen", "10.91.0.1")
    cmdline, running = define[1], define[2]
    assert cmdline.startswith(f"auto=true priority=critical url=http://10.91.0.1:"
                              f"{INSTALL_PORTS[0]}/")
    assert cmdline.split()[2].endswith("/preseed.cfg")
    assert running == {"vmlab-provider", "vmlab-management"}
    assert host.conn.listAllDomains(0) == [] and host.conn.listAllNetworks() == []

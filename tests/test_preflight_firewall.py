"""firewalld between the guest and the install server: checked before anything boots, with
the command that opens the way. firewalld cannot run on these test machines (no systemd, no
D-Bus): a stand-in `firewall-cmd` on PATH answers from a state each test sets
(tests/fake_firewalld.py), in firewall-cmd's output format."""
from __future__ import annotations

import errno

import pytest

from tests import fake_firewalld
from tests.mirror import DEFAULT_NETWORK, Mirror, closed_port, host_xml, newton_profile
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.errors import VmlabError
from vmlab.install import INSTALL_PORTS
from vmlab.preflight import serving
from vmlab.profile import load_profile

OPEN = ("let vmlab's install server ports through: firewall-cmd --zone={zone} "
        "--add-port=8719-8728/tcp && firewall-cmd --permanent --zone={zone} "
        "--add-port=8719-8728/tcp")


@pytest.fixture
def home(tmp_path, monkeypatch):
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    monkeypatch.setattr("vmlab.drivers.libvirt.networks.host_routes", lambda: [])
    return tmp_path


@pytest.fixture
def firewalld(home, monkeypatch):
    return fake_firewalld.install(home, monkeypatch)


def profile(home, **options):
    return load_profile(str(newton_profile(home / "fw.yaml", Mirror(home, closed_port()),
                                           "test:///unused", **options)))


def firewall_check(home, networks: str = "", **options):
    loaded = profile(home, **options)
    with LibvirtDriver(f"test://{host_xml(home / 'host.xml', networks=networks)}") as driver:
        address, firewall = serving.checks(driver, loaded, "fw")
    return firewall


def test_libvirts_zone_as_shipped_rejects_the_server_and_says_what_to_run(home, firewalld):
    check = firewall_check(home)
    assert check.status == "fail"
    assert check.detail.startswith(f"firewalld's zone libvirt rejects TCP port "
                                   f"{INSTALL_PORTS[0]} on 10.91.0.1")
    assert "vmlab would wait 90 minutes" in check.detail
    assert check.fix == OPEN.format(zone="libvirt")


@pytest.mark.parametrize("change, status, detail", [
    (lambda s: s.update(running=False), "ok", "firewalld is not running"),
    (lambda s: s["zones"]["libvirt"].update(ports=["8719-8728/tcp"]), "ok",
     "port 8719-8728/tcp is open in zone libvirt"),
    (lambda s: s["zones"]["libvirt"].update(ports=["8719/udp", "9000/tcp"]), "fail",
     "rejects TCP port 8719"),
    (lambda s: (s["services"].update({"vmlab": ["8719/tcp"]}),
                s["zones"]["libvirt"]["services"].append("vmlab")), "ok",
     "service vmlab of zone libvirt opens it"),
    (lambda s: s["zones"]["libvirt"].update(rich=[]), "ok",
     "zone libvirt accepts everything (target ACCEPT)"),
    (lambda s: s.update(refuse=True), "warn", "its settings could not be read"),
    (lambda s: s["zones"].pop("libvirt"), "warn", "INVALID_ZONE: libvirt"),
])
def test_what_firewalld_says_decides(home, firewalld, change, status, detail):
    change(firewalld.state)
    firewalld.save()
    check = firewall_check(home)
    assert (check.status, detail in check.detail) == (status, True), check


def test_without_firewalld_nothing_is_asked(home, monkeypatch):
    monkeypatch.setenv("PATH", str(home))  # no firewall-cmd anywhere
    check = firewall_check(home)
    assert (check.status, check.detail) == ("ok", "firewalld is not installed")


def test_a_reused_network_is_checked_in_the_zone_of_its_bridge(home, firewalld):
    firewalld.state["interfaces"]["virbr0"] = "trusted"
    firewalld.save()
    check = firewall_check(home, DEFAULT_NETWORK, provider="192.168.122.0/24",
                           provider_name="default")
    assert check.status == "ok" and "zone trusted accepts everything" in check.detail
    assert "--get-zone-of-interface=virbr0" in firewalld.calls()


def test_a_bridge_in_no_zone_is_checked_in_the_default_zone(home, firewalld):
    check = firewall_check(home, DEFAULT_NETWORK, provider="192.168.122.0/24",
                           provider_name="default")
    assert check.status == "fail" and "zone public rejects" in check.detail
    assert check.fix == OPEN.format(zone="public")


def test_a_user_mode_nic_needs_no_firewall_check(home, firewalld):
    path = home / "user.yaml"
    path.write_text("extends: newton-aio\nname: user\nvm:\n  nics:\n"
                    "    - {role: provider, network: user, subnet: 10.0.2.0/24}\n"
                    "    - {role: management, network: user, subnet: 192.168.70.0/24, "
                    "address: 192.168.70.2}\n")
    with LibvirtDriver(f"test://{host_xml(home / 'host.xml')}") as driver:
        address, firewall = serving.checks(driver, load_profile(str(path)), "user")
    assert address.detail.startswith("127.0.0.1:") and "as 10.0.2.2:" in address.detail
    assert firewall.status == "ok" and "user-mode network" in firewall.detail
    assert firewalld.calls() == []


def test_serve_on_is_checked_in_the_zone_of_its_interface(home, firewalld):
    # install.serve_on (the vSphere path): the interface holding it, else the default zone
    check = firewall_check(home, serve_on="127.0.0.1")
    assert check.status == "fail" and "zone public" in check.detail
    assert check.fix == OPEN.format(zone="public")
    assert any(call.startswith("--get-zone-of-interface=") for call in firewalld.calls())


def test_serve_on_an_address_this_machine_lacks_fails(home, firewalld):
    loaded = profile(home, serve_on="198.51.100.7")
    with LibvirtDriver(f"test://{host_xml(home / 'host.xml')}") as driver:
        address, firewall = serving.checks(driver, loaded, "fw")
    assert address.status == "fail" and "no interface of this machine has 198.51.100.7" in \
        address.detail and "install.serve_on" in address.fix
    assert firewall.status == "warn" and "not checked" in firewall.detail


# -- create: the check stops it before anything is made ----------------------------------------

def test_create_stops_before_anything_is_made_when_firewalld_rejects(home, firewalld,
                                                                     monkeypatch):
    from tests.test_create_order import SharedDriver
    from vmlab import lab as labs
    from vmlab.create import create as create_lab
    from vmlab import paths

    driver = SharedDriver(f"test://{host_xml(home / 'host.xml')}")
    monkeypatch.setattr(labs, "open_driver", lambda hypervisor: driver)
    path = newton_profile(home / "fw.yaml", Mirror(home, closed_port()), "test:///unused")
    try:
        with pytest.raises(VmlabError) as info:
            create_lab(str(path), "fw", provision=False, check_urls=False)
        assert "preflight: 1 check failed; nothing was made" in str(info.value)
        assert OPEN.format(zone="libvirt") in info.value.hint
        assert driver.conn.listAllNetworks() == [] and driver.conn.listAllDomains(0) == []
        assert not paths.labs_dir().exists()
    finally:
        LibvirtDriver.close(driver)


def test_the_port_the_server_really_took_is_checked_before_the_vm_is_defined(
        home, firewalld, monkeypatch):
    """Only 8719 is open; another program holds it, so the server takes 8720: create fails
    before the VM is defined and removes the networks it made."""
    import socket

    from tests.test_create_order import SharedDriver, kickstart_profile
    from vmlab import lab as labs
    from vmlab.create import create as create_lab
    from vmlab.drivers.libvirt.networks import existing_networks
    from vmlab.installserver import InstallServer

    firewalld.state["zones"]["libvirt"]["ports"] = [f"{INSTALL_PORTS[0]}/tcp"]
    firewalld.save()
    driver = SharedDriver(f"test://{host_xml(home / 'host.xml')}")
    monkeypatch.setattr(labs, "open_driver", lambda hypervisor: driver)
    original = InstallServer.__init__

    def on_simulated_host(self, bind, files, **options):
        present = {str(a) for n in existing_networks(driver.conn) if n.active
                   for a in n.addresses}
        if bind not in present:
            raise OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")
        original(self, "127.0.0.1", files, **{**options, "url_host": bind})

    monkeypatch.setattr(InstallServer, "__init__", on_simulated_host)
    monkeypatch.setattr(serving, "address_is_local", lambda address: True)
    defined = []
    monkeypatch.setattr(driver, "create", lambda spec, progress=None: defined.append(spec))
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", INSTALL_PORTS[0]))
    squatter.listen()
    try:
        with pytest.raises(VmlabError) as info:
            create_lab(str(kickstart_profile(home)), "port", provision=False,
                        check_urls=False)
        assert f"rejects TCP port {INSTALL_PORTS[1]}" in info.value.problems[0]
        assert "the networks made for the lab are removed again" in info.value.message
        assert defined == [] and driver.conn.listAllNetworks() == []
    finally:
        squatter.close()
        LibvirtDriver.close(driver)

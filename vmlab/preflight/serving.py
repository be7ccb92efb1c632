"""Whether the installer will reach vmlab's install server: the address the server listens
on, and the firewall between the guest and that address (kickstart and preseed
installs only)."""
from __future__ import annotations

import errno
import socket

from vmlab.drivers.base import Check, Driver, NetworkSpec
from vmlab.install import INSTALL_PORTS, _install_server_address, first_free_port
from vmlab.preflight import firewall
from vmlab.profile import SERVED_INSTALLS, LoadedProfile
from vmlab.vmspec import network_spec

SERVE_ON_FIX = ("set install.serve_on to this machine's address on the network the guest's "
                "provider NIC is on")


def checks(driver: Driver, loaded: LoadedProfile, lab: str,
           port: int | None = None) -> list[Check]:
    """The install server's address and firewall; ``port``: the one it listens on (by
    default the one it would take now)."""
    install = loaded.profile.install
    if not isinstance(install, SERVED_INSTALLS):
        return []
    bind, guest_host = _install_server_address(loaded, install)
    port = port or first_free_port(bind)
    return [address_check(driver, loaded, lab, bind, guest_host, port),
            firewall_check(driver, loaded, lab, bind, port)]


def _provider(loaded: LoadedProfile, lab: str) -> NetworkSpec:
    nic = loaded.profile.vm.nic("provider")
    assert nic is not None  # the profile model requires one
    return network_spec(lab, nic)


def _through_user_mode(loaded: LoadedProfile, lab: str) -> bool:
    install = loaded.profile.install
    assert isinstance(install, SERVED_INSTALLS)
    return install.serve_on is None and _provider(loaded, lab).kind == "user"


def _link(driver: Driver, loaded: LoadedProfile, lab: str):
    install = loaded.profile.install
    assert isinstance(install, SERVED_INSTALLS)
    return driver.network_host_link(_provider(loaded, lab)) if install.serve_on is None \
        else None


def address_check(driver: Driver, loaded: LoadedProfile, lab: str, bind: str,
                  guest_host: str, port: int) -> Check:
    name = "install server address"
    if _through_user_mode(loaded, lab):
        return Check("install server", name, "ok",
                     f"{bind}:{port}; the guest reaches it as {guest_host}:{port} through its "
                     "user-mode NIC")
    link = _link(driver, loaded, lab)
    network = _provider(loaded, lab).name
    if link is not None and link.interface is None:
        return Check("install server", name, "ok",
                     f"{bind}:{port}: this host's address on network {network}, which vmlab "
                     "starts before the server")
    if address_is_local(bind):
        return Check("install server", name, "ok", f"{bind}:{port}, an address of this machine")
    return Check("install server", name, "fail",
                 f"no interface of this machine has {bind}: the install server cannot listen "
                 "there", SERVE_ON_FIX)


def address_is_local(address: str) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((address, 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True


def firewall_check(driver: Driver, loaded: LoadedProfile, lab: str, bind: str,
                   port: int) -> Check:
    name = "firewall"
    install = loaded.profile.install
    assert isinstance(install, SERVED_INSTALLS)
    if _through_user_mode(loaded, lab):
        return Check("install server", name, "ok", "the guest reaches the server through "
                     "qemu's user-mode network on 127.0.0.1: no firewall is in between")
    if not firewall.installed():
        return Check("install server", name, "ok", "firewalld is not installed")
    ports = f"{INSTALL_PORTS[0]}-{INSTALL_PORTS[-1]}/tcp"
    try:
        if not firewall.running():
            return Check("install server", name, "ok", "firewalld is not running")
        link = _link(driver, loaded, lab)
        if link is not None and link.interface is not None:  # the bridge exists: ask
            zone_name = firewall.zone_of_interface(link.interface) or firewall.default_zone()
        elif link is not None:  # the zone the bridge will be put in
            zone_name = link.zone
        else:
            interface = firewall.interface_with_address(bind)
            if interface is None:
                return Check("install server", name, "warn",
                             f"not checked: {bind} is not an address of this machine",
                             SERVE_ON_FIX)
            zone_name = firewall.zone_of_interface(interface) or firewall.default_zone()
        assert zone_name is not None
        why = firewall.lets_through(firewall.zone(zone_name), port)
    except firewall.FirewallUnreadable as exc:
        return Check("install server", name, "warn",
                     f"firewalld runs, but its settings could not be read: {exc}",
                     "run vmlab as root, or look yourself: firewall-cmd --list-all-zones")
    if why:
        return Check("install server", name, "ok", f"firewalld lets {port}/tcp through: {why}")
    return Check(
        "install server", name, "fail",
        f"firewalld's zone {zone_name} rejects TCP port {port} on {bind}: the installer could "
        "not fetch its answer file from the install server, and vmlab would wait "
        f"{install.install_timeout_minutes} minutes for it",
        f"let vmlab's install server ports through: firewall-cmd --zone={zone_name} "
        f"--add-port={ports} && firewall-cmd --permanent --zone={zone_name} --add-port={ports}")

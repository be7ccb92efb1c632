"""A libvirt connection and what its errors mean: opened, and explained by the way its URI
reaches the daemon. Shared by the driver and its reader (imports libvirt and no more)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import libvirt

from vmlab.errors import DriverError, InfrastructureError


def _ignore_libvirt_errors(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; vmlab reports them itself."""


libvirt.registerErrorHandler(_ignore_libvirt_errors, None)


def message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


#: libvirt's default ports of its remote transports (libvirt.org/remote.html).
TCP_PORT, TLS_PORT = 16509, 16514


def connection_hint(uri: str) -> str:
    """What to check when libvirt at ``uri`` does not answer, by the way the URI reaches it:
    a local socket, SSH, plain TCP or TLS (the default transport when a host is named)."""
    parsed = urlparse(uri)
    driver, _, transport = parsed.scheme.partition("+")
    host = parsed.hostname
    if driver == "test":
        return f"the test driver reads {parsed.path}: is it a libvirt node XML file?"
    if transport in ("ssh", "libssh", "libssh2"):
        port = f" -p {parsed.port}" if parsed.port else ""
        key = parse_qs(parsed.query).get("keyfile")
        login = f"ssh{port}{f' -i {key[0]}' if key else ''} " \
                f"{f'{parsed.username}@' if parsed.username else ''}{host}"
        return (f"check that `{login}` logs in without a prompt (SSH reachable on that port, "
                "the key accepted, the host key known, or no_verify=1 in the URI), and that "
                f"libvirtd runs on {host}: `virsh -c '{uri}' version` tells")
    if transport == "tcp":
        return (f"check that {host}:{parsed.port or TCP_PORT} is reachable from here and that "
                f"libvirtd on {host} accepts TCP connections (listen_tcp = 1 in its "
                "libvirtd.conf, with `libvirtd --listen` or the libvirtd-tcp.socket unit)")
    if host and transport in ("", "tls"):
        return (f"check that {host}:{parsed.port or TLS_PORT} is reachable from here, that "
                f"libvirtd on {host} accepts TLS connections (listen_tls, with `libvirtd "
                "--listen` or the libvirtd-tls.socket unit), and that this machine has the CA "
                "certificate and its client certificate (/etc/pki/CA/cacert.pem, "
                "/etc/pki/libvirt/clientcert.pem); or use qemu+ssh://")
    return ("is libvirtd running on this machine? start it with `libvirtd -d` (and `virtlogd "
            "-d`); a user other than root needs to be in the libvirt group, or qemu:///session")


def open_connection(uri: str) -> libvirt.virConnect:
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise InfrastructureError(f"cannot connect to libvirt at {uri}: {message(exc)}",
                                  hint=connection_hint(uri)) from exc


def failure(conn: libvirt.virConnect, uri: str, what: str,
            exc: libvirt.libvirtError) -> DriverError:
    """A libvirt error as a DriverError; a lost connection says so (not "no such VM")."""
    try:
        alive = conn.isAlive() == 1
    except libvirt.libvirtError:
        alive = False
    if not alive:
        return DriverError(f"the connection to libvirt at {uri} was lost while "
                           f"{what} ({message(exc)})",
                           hint=f"libvirtd stopped or restarted; once `virsh -c {uri} "
                                "version` answers, run the command again")
    return DriverError(f"{what} failed: {message(exc)}")

"""A libvirt connection and what its errors mean: opened, and explained by the way its URI
reaches the daemon. Shared by the driver and its reader (imports libvirt and no more)."""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar
from urllib.parse import parse_qs, urlparse

import libvirt

from vmlab.errors import DriverError, InfrastructureError


def _ignore_libvirt_errors(_ctx: object, _err: object) -> None:
    """libvirt prints every error to stderr by default; vmlab reports them itself."""


libvirt.registerErrorHandler(_ignore_libvirt_errors, None)

F = TypeVar("F", bound=Callable[..., Any])


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


def hint_for(exc: libvirt.libvirtError) -> str | None:
    """What to do about a libvirt error, by its code, where there is more to say than its
    message (libvirt docs: virErrorNumber)."""
    code = exc.get_error_code()
    text = message(exc).lower()
    if code in (libvirt.VIR_ERR_OPERATION_DENIED, libvirt.VIR_ERR_ACCESS_DENIED,
                libvirt.VIR_ERR_AUTH_FAILED):
        return ("the libvirt user lacks the permission: connect as root, or as a member of "
                "the libvirt group (its polkit rule)")
    if code == libvirt.VIR_ERR_NO_SUPPORT:
        return "this libvirt hypervisor driver does not offer that operation"
    if "no space left" in text or "not enough space" in text:
        return "the storage pool is full: free space, or `vmlab gc --images` unused images"
    if code in (libvirt.VIR_ERR_NO_STORAGE_POOL, libvirt.VIR_ERR_STORAGE_POOL_BUILT):
        return "check the pool with `virsh pool-list --all` and `virsh pool-info POOL`"
    if "unexpectedly" in text:  # "qemu unexpectedly closed the monitor", "... failed unexpectedly"
        return ("qemu stopped while libvirt talked to it: read the VM's log under "
                "/var/log/libvirt/qemu/ on the hypervisor host")
    return None


def translated(what: str) -> Callable[[F], F]:
    """Turn the libvirt errors of a driver method into vmlab errors: a lost connection says
    so (``failure``), others carry a hint where one helps. ``self`` has ``conn`` and
    ``uri``; the VM (a VMRef or VMSpec) or name a method is called with is named."""
    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except libvirt.libvirtError as exc:
                subject = args[0] if args else None
                name = subject if isinstance(subject, str) else getattr(subject, "name", None)
                doing = f"{what} {name}" if isinstance(name, str) else what
                error = failure(self.conn, self.uri, doing, exc)
                if error.hint is None:
                    error.hint = hint_for(exc)
                raise error from exc
        return wrapper  # type: ignore[return-value]
    return decorate


def translate_methods(table: dict[str, str]) -> Callable[[type], type]:
    """A class decorator: every method named in ``table`` (its own or inherited) wrapped
    by ``translated`` with the words there, so no libvirt error leaves the class raw."""
    def decorate(cls: type) -> type:
        for name, what in table.items():
            setattr(cls, name, translated(what)(getattr(cls, name)))
        return cls
    return decorate

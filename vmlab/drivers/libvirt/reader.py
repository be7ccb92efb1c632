"""The part of the libvirt driver that only reads: a VM found by name, its power state,
snapshots, console log and SSH endpoint. `vmlab status`, `snapshots`, `ssh` and `ssh-config`
connect with this alone (it imports libvirt and vmlab's value objects, not the driver's
XML builders, storage and networks); the driver (vmlab.drivers.libvirt.driver) extends it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlparse

import libvirt

from vmlab.drivers.libvirt.connection import failure, open_connection
from vmlab.drivers.libvirt.ownership import VMLAB_NS, Ownership
from vmlab.drivers.refs import Endpoint, Glance, PowerState, Snapshot, VMRef
from vmlab.errors import DriverError, InfrastructureError, NotFound, NotOwned

_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.SHUTOFF,
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.PAUSED,
}
_SNAPSHOT_STATES = {"running": PowerState.RUNNING, "shutoff": PowerState.SHUTOFF,
                    "paused": PowerState.PAUSED}


class LibvirtReader:
    """A connection to libvirt for reading a VM (the driver's options; ``pool`` and
    ``pool_path`` are kept for the driver, which extends this)."""

    kind = "libvirt"

    def __init__(self, uri: str = "qemu:///system", pool: str = "vmlab",
                 pool_path: str | None = None) -> None:
        self.uri = uri
        self.pool_name = pool
        self.pool_path = pool_path
        self.conn = open_connection(uri)

    def __enter__(self) -> "LibvirtReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.conn.close()
        except libvirt.libvirtError:
            pass

    @property
    def remote_host(self) -> str | None:
        host = urlparse(self.uri).hostname
        return host if host and host not in ("", "localhost") else None

    def _domain(self, ref: VMRef, *, owned: bool = True) -> libvirt.virDomain:
        domain = self._lookup(ref.name)
        if domain is None:
            raise NotFound(f"VM {ref.name!r} does not exist on {self.uri}")
        if owned and self._owner(domain) is None:
            raise NotOwned(f"VM {ref.name!r} carries no vmlab ownership tag: not touching it",
                           hint="vmlab only acts on VMs it created")
        return domain

    @staticmethod
    def _owner(domain: libvirt.virDomain) -> Ownership | None:
        try:
            text = domain.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, VMLAB_NS, 0)
        except libvirt.libvirtError:
            return None
        return Ownership.from_xml(text)

    def _ref(self, domain: libvirt.virDomain) -> VMRef:
        owner = self._owner(domain)
        return VMRef(self.kind, domain.name(), domain.UUIDString(), owner.lab if owner else None)

    def _call(self, what: str, fn, *args):
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise self._failure(what, exc) from exc

    def _lookup(self, name: str) -> libvirt.virDomain | None:
        """The domain, or None when there is none; a broken connection is an error."""
        try:
            return self.conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise self._failure(f"looking up VM {name}", exc) from exc

    def _failure(self, what: str, exc: libvirt.libvirtError) -> DriverError:
        """A libvirt error as a DriverError; a lost connection says so (not "no such VM")."""
        return failure(self.conn, self.uri, what, exc)

    def state(self, ref: VMRef) -> PowerState:
        domain = self._domain(ref, owned=False)
        return _STATES.get(domain.state()[0], PowerState.OTHER)

    def find(self, name: str) -> VMRef | None:
        domain = self._lookup(name)
        return self._ref(domain) if domain is not None else None

    def interface_addresses(self, ref: VMRef) -> dict[str, list[str]]:
        return self._addresses(self._domain(ref))

    @staticmethod
    def _addresses(domain: libvirt.virDomain) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for source in (libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
                       libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
                       libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP):
            try:
                interfaces = domain.interfaceAddresses(source, 0)
            except libvirt.libvirtError:
                continue
            for info in interfaces.values():
                mac = (info.get("hwaddr") or "").lower()
                for addr in info.get("addrs") or []:
                    if addr.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4:
                        found.setdefault(mac, [])
                        if addr["addr"] not in found[mac]:
                            found[mac].append(addr["addr"])
        return found

    def ssh_endpoint(self, ref: VMRef, port: int = 22) -> Endpoint:
        domain = self._domain(ref)
        owner = self._owner(domain)
        assert owner is not None
        return self._endpoint(ref, domain, owner, port)

    def _endpoint(self, ref: VMRef, domain: libvirt.virDomain, owner: Ownership,
                  port: int) -> Endpoint:
        if port in owner.forwards:
            return Endpoint("127.0.0.1", owner.forwards[port], jump=self._jump())
        if owner.ssh_address:
            return Endpoint(owner.ssh_address, port, jump=self._jump())
        # the provider NIC's lease from the network's dnsmasq (libvirt:
        # virDomainInterfaceAddresses with VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE)
        addresses = self._addresses(domain).get(owner.provider_mac.lower(), [])
        if not addresses:
            raise InfrastructureError(f"VM {ref.name!r} reports no address yet",
                                      hint="it may still be booting (no DHCP lease for its "
                                           f"provider NIC {owner.provider_mac} yet)")
        return Endpoint(addresses[0], port, jump=self._jump())

    def _jump(self) -> tuple[str, str, int, str | None] | None:
        """The hypervisor host as an SSH jump host, for a qemu+ssh:// URI."""
        parsed = urlparse(self.uri)
        if self.remote_host is None or "ssh" not in parsed.scheme:
            return None
        keyfile = parse_qs(parsed.query).get("keyfile", [None])[0]
        return (parsed.username or "root", self.remote_host, parsed.port or 22, keyfile)

    def console_log_path(self, ref: VMRef) -> str | None:
        owner = self._owner(self._domain(ref))
        return owner.serial_log if owner and owner.serial_log else None

    def snapshot_list(self, ref: VMRef) -> list[Snapshot]:
        return self._snapshots(self._domain(ref))

    @staticmethod
    def _snapshots(domain: libvirt.virDomain) -> list[Snapshot]:
        snapshots: list[Snapshot] = []
        for snap in domain.listAllSnapshots(0):
            root = ET.fromstring(snap.getXMLDesc(0))
            parent = root.findtext("./parent/name")
            snapshots.append(Snapshot(
                name=root.findtext("name", ""), parent=parent,
                created=datetime.fromtimestamp(int(root.findtext("creationTime", "0")),
                                               timezone.utc),
                state=_SNAPSHOT_STATES.get(root.findtext("state", ""), PowerState.OTHER),
                description=root.findtext("description", "") or "",
                current=bool(snap.isCurrent(0))))
        return _parents_first(snapshots)

    def glance(self, name: str, ssh_port: int = 22) -> Glance | None:
        """As Driver.glance, on one lookup of the domain and one read of its tag."""
        domain = self._lookup(name)
        if domain is None:
            return None
        owner = self._owner(domain)
        ref = VMRef(self.kind, name, self._call(f"reading VM {name}", domain.UUIDString),
                    owner.lab if owner else None)
        power = _STATES.get(self._call(f"reading the state of VM {name}", domain.state)[0],
                            PowerState.OTHER)
        if owner is None:
            raise NotOwned(f"VM {name!r} carries no vmlab ownership tag: not touching it",
                           hint="vmlab only acts on VMs it created")
        snapshots = tuple(self._snapshots(domain))
        endpoint = (self._endpoint(ref, domain, owner, ssh_port)
                    if power == PowerState.RUNNING else None)
        return Glance(ref, power, snapshots, owner.serial_log or None, endpoint)


def _parents_first(snapshots: list[Snapshot]) -> list[Snapshot]:
    by_parent: dict[str | None, list[Snapshot]] = {}
    names = {s.name for s in snapshots}
    for snap in sorted(snapshots, key=lambda s: (s.created, s.name)):
        by_parent.setdefault(snap.parent if snap.parent in names else None, []).append(snap)
    ordered: list[Snapshot] = []
    stack = list(reversed(by_parent.get(None, [])))
    while stack:
        snap = stack.pop()
        ordered.append(snap)
        stack.extend(reversed(by_parent.get(snap.name, [])))
    return ordered

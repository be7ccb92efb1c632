"""The networks around a lab's: what libvirt has defined, the host's routes, where a lab's
subnet collides with either, and a free subnet to suggest instead.

libvirt refuses to start a network whose subnet is already routed on the host ("network is
already in use by interface virbr0"), and a subnet that overlaps another network or route
misroutes the guest's traffic even where it starts. Both are found here before anything is
made. A network of the lab's own name is reused as it is (vmlab never changes a network it
did not make), so it must already have the lab's subnet and be running.
"""
from __future__ import annotations

import ipaddress
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import libvirt

from vmlab.drivers.base import HostLink, NetworkSpec, NicSpec
from vmlab.errors import DriverError

#: The zone libvirt (5.1 and later) puts the bridge of every network it starts in when
#: firewalld runs, unless the network's <bridge zone=...> names another (libvirt's
#: src/network/libvirt.zone: it rejects traffic to the host except dhcp, dns, ssh, tftp).
LIBVIRT_ZONE = "libvirt"
PRIVATE_BLOCKS = tuple(ipaddress.ip_network(block) for block in
                       ("192.168.0.0/16", "172.16.0.0/12", "10.0.0.0/8"))
BRIDGED = ("nat", "isolated")


@dataclass(frozen=True)
class ExistingNetwork:
    name: str
    active: bool
    bridge: str | None
    zone: str | None
    subnets: tuple[ipaddress.IPv4Network, ...]
    addresses: tuple[ipaddress.IPv4Address, ...]

    def describe(self) -> str:
        state = "running" if self.active else "defined, not running"
        bridge = f", bridge {self.bridge}" if self.bridge else ""
        subnets = ", ".join(str(s) for s in self.subnets) or "no IPv4 subnet"
        return f"libvirt network {self.name!r} ({subnets}, {state}{bridge})"


@dataclass(frozen=True)
class Route:
    destination: ipaddress.IPv4Network
    device: str

    def describe(self) -> str:
        return f"host route {self.destination} dev {self.device}"


@dataclass(frozen=True)
class Collision:
    """Why the network of one NIC cannot be made or used as the profile says."""

    role: str
    network: str
    subnet: ipaddress.IPv4Network
    problem: str
    fix: str


def existing_networks(conn: libvirt.virConnect) -> list[ExistingNetwork]:
    """Every network libvirt has defined, running or not, with its IPv4 subnets."""
    found = []
    for network in conn.listAllNetworks(0):
        root = ET.fromstring(network.XMLDesc(0))
        bridge = root.find("bridge")
        subnets, addresses = [], []
        for ip in root.findall("ip"):
            if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
                continue
            mask = ip.get("prefix") or ip.get("netmask") or "24"
            interface = ipaddress.IPv4Interface(f"{ip.get('address')}/{mask}")
            subnets.append(interface.network)
            addresses.append(interface.ip)
        found.append(ExistingNetwork(
            name=network.name(), active=bool(network.isActive()),
            bridge=bridge.get("name") if bridge is not None else None,
            zone=bridge.get("zone") if bridge is not None else None,
            subnets=tuple(subnets), addresses=tuple(addresses)))
    return found


def host_routes() -> list[Route] | None:
    """The IPv4 routes of this machine's main table (`ip -j -4 route`), without the default
    route; None when they cannot be read."""
    ip = shutil.which("ip")
    if ip is None:
        return None
    try:
        result = subprocess.run([ip, "-j", "-4", "route", "show"], capture_output=True,
                                text=True, timeout=10, check=False)
        rows = json.loads(result.stdout) if result.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(rows, list):
        return None
    routes = []
    for row in rows:
        destination = row.get("dst", "")
        if destination in ("", "default") or row.get("type", "unicast") != "unicast":
            continue
        try:
            network = ipaddress.IPv4Network(destination, strict=False)
        except ValueError:
            continue
        routes.append(Route(network, row.get("dev", "?")))
    return routes


def collisions(nics: Iterable[NicSpec], existing: list[ExistingNetwork],
               routes: list[Route] | None, uri: str) -> list[Collision]:
    """What stands in the way of the bridged networks ``nics`` need (``routes`` None: the
    host's routes were not read, e.g. on a remote hypervisor)."""
    nics = [nic for nic in nics if nic.network.kind in BRIDGED]
    by_name = {network.name: network for network in existing}
    bridges = {network.bridge for network in existing if network.bridge}
    taken = [s for network in existing for s in network.subnets]
    taken += [route.destination for route in routes or []]
    taken += [nic.network.subnet for nic in nics]
    found = []
    for nic in nics:
        spec = nic.network
        same = by_name.get(spec.name)
        if same is not None:
            if spec.subnet not in same.subnets:
                found.append(Collision(
                    nic.role, spec.name, spec.subnet,
                    f"{same.describe()} exists, but the profile gives the {nic.role} NIC "
                    f"subnet {spec.subnet}",
                    f"set the {nic.role} NIC's subnet to "
                    f"{same.subnets[0] if same.subnets else 'that of the network'} to use it, "
                    f"or give it another network_name"))
            elif not same.active:
                found.append(Collision(
                    nic.role, spec.name, spec.subnet, f"{same.describe()} is not running",
                    f"start it: virsh -c {uri} net-start {spec.name}"))
            continue
        overlaps = [(network.describe(), network.name if subnet == spec.subnet else None)
                    for network in existing for subnet in network.subnets
                    if subnet.overlaps(spec.subnet)]
        overlaps += [(route.describe(), None) for route in routes or []
                     if route.device not in bridges and route.destination.overlaps(spec.subnet)]
        if not overlaps:
            continue
        free = free_subnet(spec.subnet, taken)
        fix = (f"give the {nic.role} NIC a free subnet, e.g. `subnet: {free}`" if free
               else f"give the {nic.role} NIC a subnet no network or route of this host uses")
        reusable = [name for _, name in overlaps if name]
        if reusable:
            fix += f", or use that network as it is: `network_name: {reusable[0]}`"
        found.append(Collision(
            nic.role, spec.name, spec.subnet,
            f"the {nic.role} network {spec.name!r} ({spec.subnet}) overlaps "
            + "; ".join(what for what, _ in overlaps), fix))
    return found


def free_subnet(wanted: ipaddress.IPv4Network,
                taken: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    """A private subnet as large as ``wanted`` that overlaps none of ``taken``: the next
    ones after it in its own private block first (192.168.122.0/24 -> 192.168.123.0/24)."""
    taken = list(taken)
    blocks = sorted(PRIVATE_BLOCKS, key=lambda block: not wanted.subnet_of(block))
    for block in blocks:
        if wanted.prefixlen < block.prefixlen:
            continue
        size = 1 << (32 - wanted.prefixlen)
        count = 1 << (wanted.prefixlen - block.prefixlen)
        base = int(block.network_address)
        start = (int(wanted.network_address) - base) // size + 1 if wanted.subnet_of(block) \
            else 0
        for step in range(count):
            candidate = ipaddress.IPv4Network((base + ((start + step) % count) * size,
                                               wanted.prefixlen))
            if candidate != wanted and not any(candidate.overlaps(t) for t in taken):
                return candidate
    return None


def zone_of(network: ExistingNetwork | None) -> str:
    """The firewalld zone of a network's bridge: its own <bridge zone>, or libvirt's."""
    return (network.zone if network is not None and network.zone else LIBVIRT_ZONE)


class NetworkOperations:
    """Mixed into the driver, which provides the connection, its URI, whether the hypervisor
    is this machine, and the single-network steps (make one, remove one, is one in use)."""

    conn: libvirt.virConnect
    uri: str
    remote_host: str | None
    _call: Callable[..., Any]
    _ensure_network: Callable[[NetworkSpec], "libvirt.virNetwork | None"]
    _remove_network: Callable[[libvirt.virNetwork], None]
    _network_in_use: Callable[[str], bool]

    @property
    def local(self) -> bool:
        """Whether the hypervisor runs on this machine (its routes and firewall are ours)."""
        return self.remote_host is None

    def network_collisions(self, nics: tuple[NicSpec, ...]) -> list[Collision]:
        """What keeps the bridged networks of ``nics`` from being made or used as given:
        overlaps with other libvirt networks and (on this machine) the host's routes."""
        if not any(nic.network.kind in BRIDGED for nic in nics):
            return []  # user-mode NICs add nothing to the host
        existing = self._call("listing networks", existing_networks, self.conn)
        routes = host_routes() if self.local else None
        return collisions(nics, existing, routes, self.uri)

    def ensure_networks(self, nics: tuple[NicSpec, ...]) -> list[str]:
        found = self.network_collisions(nics)
        if found:
            raise DriverError("the lab's networks collide with this host's:\n" +
                              "\n".join(f"  - {c.problem}" for c in found),
                              hint="\n".join(c.fix for c in found))
        made: list[str] = []
        try:
            for nic in nics:
                if nic.network.kind in BRIDGED and nic.network.name not in made:
                    network = self._ensure_network(nic.network)
                    if network is not None:
                        made.append(network.name())
        except BaseException:
            self.remove_networks(made)
            raise
        return made

    def remove_networks(self, names: list[str]) -> None:
        for name in names:
            try:
                if not self._network_in_use(name):
                    self._remove_network(self.conn.networkLookupByName(name))
            except libvirt.libvirtError:
                pass  # gone already, or the connection is: nothing more to do here

    def network_host_link(self, network: NetworkSpec) -> HostLink | None:
        if not self.local or network.kind not in BRIDGED:
            return None
        existing = {n.name: n for n in existing_networks(self.conn)}.get(network.name)
        interface = existing.bridge if existing is not None and existing.active else None
        return HostLink(interface, zone_of(existing))

"""firewalld on this machine, asked through `firewall-cmd`: is it running, which zone an
interface is in, and does a zone let a TCP port through to this host.

Why it matters: libvirt puts the bridge of every network it starts into firewalld's
``libvirt`` zone, which rejects everything bound for the host except DHCP, DNS, SSH and TFTP
(libvirt's src/network/libvirt.zone). The installer's fetch of its kickstart from vmlab's
install server, and its call back when done, are bound for the host: without a rule for the
server's port anaconda waits, and vmlab with it, until the install timeout.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

TIMEOUT = 20.0


class FirewallUnreadable(Exception):
    """firewall-cmd is there but did not answer (not root, D-Bus down, ...)."""


@dataclass(frozen=True)
class Zone:
    name: str
    target: str
    services: tuple[str, ...]
    ports: tuple[str, ...]
    rich_rules: tuple[str, ...] = field(default_factory=tuple)


def _firewall_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    command = shutil.which("firewall-cmd")
    assert command is not None
    try:
        return subprocess.run([command, *args], capture_output=True, text=True,
                              timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FirewallUnreadable(f"firewall-cmd {' '.join(args)}: {exc}") from exc


def _answer(*args: str) -> str:
    result = _firewall_cmd(*args)
    if result.returncode != 0:
        raise FirewallUnreadable(f"firewall-cmd {' '.join(args)} failed: "
                                 f"{(result.stderr or result.stdout).strip()}")
    return result.stdout.strip()


def installed() -> bool:
    return shutil.which("firewall-cmd") is not None


def running() -> bool:
    """`firewall-cmd --state` says "running" (exit 0) or "not running" (exit 252)."""
    return installed() and _firewall_cmd("--state").returncode == 0


def zone_of_interface(interface: str) -> str | None:
    """The zone firewalld has put ``interface`` in (None: in none, so the default zone)."""
    result = _firewall_cmd(f"--get-zone-of-interface={interface}")
    if result.returncode != 0:  # "no zone"
        return None
    return result.stdout.strip() or None


def default_zone() -> str:
    return _answer("--get-default-zone")


def zone(name: str) -> Zone:
    """The zone's runtime settings, from `firewall-cmd --zone=NAME --list-all`."""
    values: dict[str, str] = {}
    rich: list[str] = []
    in_rich = False
    for line in _answer(f"--zone={name}", "--list-all").splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if in_rich and (line.startswith("\t") or line.startswith("        ") or not sep):
            if line.strip():
                rich.append(line.strip())
            continue
        in_rich = key == "rich rules"
        if sep:
            values[key.strip()] = value.strip()
    return Zone(name, values.get("target", "default"), tuple(values.get("services", "").split()),
                tuple(values.get("ports", "").split()), tuple(rich))


def service_ports(service: str) -> tuple[str, ...]:
    """The ports of a firewalld service (`firewall-cmd --info-service=NAME`)."""
    for line in _answer(f"--info-service={service}").splitlines():
        key, _, value = line.strip().partition(":")
        if key == "ports":
            return tuple(value.split())
    return ()


def _covers(spec: str, port: int, protocol: str = "tcp") -> bool:
    """Whether a firewalld port spec ("8080/tcp", "8000-8100/tcp") covers ``port``."""
    numbers, _, proto = spec.partition("/")
    if proto != protocol:
        return False
    low, _, high = numbers.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:
        return False


def lets_through(zone_: Zone, port: int) -> str | None:
    """Why ``zone_`` lets TCP ``port`` through to the host, or None when it does not."""
    for spec in zone_.ports:
        if _covers(spec, port):
            return f"port {spec} is open in zone {zone_.name}"
    if zone_.services:
        with ThreadPoolExecutor(max_workers=8) as pool:
            ports = dict(zip(zone_.services, pool.map(service_ports, zone_.services)))
        for service, specs in ports.items():
            if any(_covers(spec, port) for spec in specs):
                return f"service {service} of zone {zone_.name} opens it"
    rejecting = any(word in rule for rule in zone_.rich_rules for word in ("reject", "drop"))
    if zone_.target == "ACCEPT" and not rejecting:
        return f"zone {zone_.name} accepts everything (target ACCEPT)"
    return None


def interface_with_address(address: str) -> str | None:
    """The interface of this machine that holds ``address`` (`ip -j -4 addr`)."""
    ip = shutil.which("ip")
    if ip is None:
        return None
    try:
        result = subprocess.run([ip, "-j", "-4", "addr", "show"], capture_output=True,
                                text=True, timeout=10, check=False)
        rows = json.loads(result.stdout or "[]")
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    for row in rows if isinstance(rows, list) else []:
        if any(info.get("local") == address for info in row.get("addr_info", [])):
            return row.get("ifname")
    return None

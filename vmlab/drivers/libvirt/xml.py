"""libvirt XML for vmlab's domains, networks and volumes, built with ElementTree.

User-mode NICs go through ``<qemu:commandline>``: libvirt 9.0 has no passt, and its own
``<interface type='user'>`` (slirp) cannot forward a host port. That keeps a lab off any host
bridge, which is what machines without a spare network (and CI) need.
"""
from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from vmlab.drivers.base import NicSpec, VMSpec
from vmlab.drivers.libvirt.ownership import VMLAB_NS, Ownership  # noqa: F401

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
ET.register_namespace("qemu", QEMU_NS)


@dataclass(frozen=True)
class BootFiles:
    kernel: str
    initrd: str
    cmdline: str


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def user_netdev(index: int, nic: NicSpec, host_port: int | None) -> list[str]:
    """qemu arguments for a user-mode NIC; the management role is host-only (restrict)."""
    subnet = nic.network.subnet
    options = [f"user,id=vmlabnet{index}", f"net={subnet}"]
    if nic.role == "management":
        options.append("restrict=on")
    if nic.forward_port is not None and host_port is not None:
        options.append(f"hostfwd=tcp:127.0.0.1:{host_port}-:{nic.forward_port}")
    return ["-netdev", ",".join(options),
            "-device", f"virtio-net-pci,netdev=vmlabnet{index},mac={nic.mac},"
            f"bus=pci.0,addr={0x10 + index:#x}"]


def move_forwards(argument: str, moved: dict[int, int]) -> str:
    """A ``-netdev user,...`` argument with its forwarded host ports moved (old -> new)."""
    options = argument.split(",")
    for index, option in enumerate(options):
        if option.startswith("hostfwd=tcp:127.0.0.1:"):
            host, _, guest = option.removeprefix("hostfwd=tcp:127.0.0.1:").partition("-:")
            if host.isdigit() and int(host) in moved:
                options[index] = f"hostfwd=tcp:127.0.0.1:{moved[int(host)]}-:{guest}"
    return ",".join(options)


def domain_xml(spec: VMSpec, *, domain_type: str, pool: str, disk_volume: str,
               cdrom_volumes: list[str], boot: BootFiles | None, owner: Ownership) -> str:
    domain = ET.Element("domain", {"type": domain_type})
    _sub(domain, "name", spec.name)
    metadata = _sub(domain, "metadata")
    metadata.append(owner.to_element())
    _sub(domain, "memory", str(spec.memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(spec.cpus))
    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch="x86_64", machine="pc")
    if boot is not None:
        _sub(os_element, "kernel", boot.kernel)
        _sub(os_element, "initrd", boot.initrd)
        _sub(os_element, "cmdline", boot.cmdline)
    _sub(os_element, "boot", dev="hd")
    if spec.guest_data:
        sysinfo = _sub(domain, "sysinfo", type="fwcfg")
        for name, value in spec.guest_data:
            _sub(sysinfo, "entry", value, name=f"opt/vmlab/{name}")
    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if domain_type == "kvm":
        _sub(domain, "cpu", mode="host-passthrough")
    _sub(domain, "clock", offset="utc")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")
    devices = _sub(domain, "devices")
    disk = _sub(devices, "disk", type="volume", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", pool=pool, volume=disk_volume)
    _sub(disk, "target", dev="vda", bus="virtio")
    for index, volume in enumerate(cdrom_volumes):
        cdrom = _sub(devices, "disk", type="volume", device="cdrom", snapshot="no")
        _sub(cdrom, "driver", name="qemu", type="raw")
        _sub(cdrom, "source", pool=pool, volume=volume)
        _sub(cdrom, "target", dev=f"sd{chr(ord('a') + index)}", bus="sata")
        _sub(cdrom, "readonly")
    for nic in spec.nics:
        if nic.network.kind in ("nat", "isolated"):
            interface = _sub(devices, "interface", type="network")
            _sub(interface, "source", network=nic.network.name)
            _sub(interface, "mac", address=nic.mac)
            _sub(interface, "model", type="virtio")
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=owner.serial_log, append="on")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    rng = _sub(devices, "rng", model="virtio")  # entropy for the guest's first-boot host keys
    _sub(rng, "backend", "/dev/urandom", model="random")
    arguments: list[str] = []
    for index, nic in enumerate(spec.nics):
        if nic.network.kind == "user":
            host_port = owner.forwards.get(nic.forward_port) if nic.forward_port else None
            arguments += user_netdev(index, nic, host_port)
    if arguments:
        commandline = ET.SubElement(domain, f"{{{QEMU_NS}}}commandline")
        for argument in arguments:
            ET.SubElement(commandline, f"{{{QEMU_NS}}}arg", {"value": argument})
    ET.indent(domain)
    return ET.tostring(domain, encoding="unicode") + "\n"


def network_xml(name: str, kind: str, subnet: ipaddress.IPv4Network,
                host_address: ipaddress.IPv4Address | None, dhcp: bool) -> str:
    network = ET.Element("network")
    _sub(network, "name", name)
    if kind == "nat":
        _sub(network, "forward", mode="nat")
    address = host_address or next(subnet.hosts())
    ip = _sub(network, "ip", address=str(address), netmask=str(subnet.netmask))
    if dhcp:
        hosts = [h for h in subnet.hosts() if h != address]
        dhcp_element = _sub(ip, "dhcp")
        _sub(dhcp_element, "range", start=str(hosts[len(hosts) // 2]), end=str(hosts[-1]))
    ET.indent(network)
    return ET.tostring(network, encoding="unicode") + "\n"


def volume_xml(name: str, capacity_bytes: int, fmt: str,
               backing_path: str | None = None) -> str:
    volume = ET.Element("volume")
    _sub(volume, "name", name)
    _sub(volume, "capacity", str(capacity_bytes), unit="bytes")
    _sub(volume, "allocation", "0", unit="bytes")
    target = _sub(volume, "target")
    _sub(target, "format", type=fmt)
    if backing_path is not None:
        backing = _sub(volume, "backingStore")
        _sub(backing, "path", backing_path)
        _sub(backing, "format", type="qcow2")
    return ET.tostring(volume, encoding="unicode")


def pool_xml(name: str, path: str) -> str:
    pool = ET.Element("pool", {"type": "dir"})
    _sub(pool, "name", name)
    target = _sub(pool, "target")
    _sub(target, "path", path)
    return ET.tostring(pool, encoding="unicode")

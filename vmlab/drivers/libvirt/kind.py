"""The libvirt driver's knowledge before it connects (see vmlab.drivers.kinds)."""
from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from vmlab.drivers.kinds import Capabilities, DriverKind, Section

if TYPE_CHECKING:
    from vmlab.drivers.base import NetworkSpec


class LibvirtKind(DriverKind):
    name = "libvirt"
    capabilities = Capabilities(kernel_boot=True, disk_from_image=True)
    driver = ("vmlab.drivers.libvirt.driver", "LibvirtDriver")
    reader = ("vmlab.drivers.libvirt.reader", "LibvirtReader")

    def options(self, section: Section) -> dict[str, Any]:
        return {"uri": section["uri"], "pool": section["pool"]}

    def uri(self, section: Section) -> str:
        return str(section["uri"])

    def host_address(self, network: NetworkSpec) -> tuple[str, str]:
        if network.kind == "user":
            # qemu's user-mode network shows the host's loopback to the guest as the
            # subnet's second address (10.0.2.2 on qemu's default 10.0.2.0/24)
            return "127.0.0.1", str(network.subnet.network_address + 2)
        return super().host_address(network)

    def guest_resolver(self, network: NetworkSpec) -> ipaddress.IPv4Address | None:
        if network.kind == "user":
            # qemu's built-in resolver: the subnet's fourth address (10.0.2.3)
            return network.subnet.network_address + 3
        # libvirt's dnsmasq on the network's own address (vmlab gives the host's end the
        # subnet's first host, as libvirt's `default` network has 192.168.122.1)
        return super().guest_resolver(network)


KIND = LibvirtKind()

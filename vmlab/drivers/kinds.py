"""What a driver knows before it connects: how a profile's hypervisor section becomes its
connection options (secrets included), the URI a lab records, what it can do, and how a
guest on one of its networks reaches this machine.

Every driver has one ``DriverKind`` in its folder's ``kind`` module, registered by kind in
``vmlab.drivers``. These modules import no hypervisor library, so that code outside
``drivers/`` asks them instead of branching on the kind, even where the driver's extra is
not installed (naming a vSphere lab's URI needs no pyVmomi).
"""
from __future__ import annotations

import abc
import importlib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from vmlab.errors import InfrastructureError
from vmlab.names import check_hypervisor_name

if TYPE_CHECKING:
    from vmlab.drivers.base import Driver, NetworkSpec

#: A profile's hypervisor section as JSON data (``Hypervisor.model_dump(mode="json")``, or
#: what a lab's state recorded).
Section = Mapping[str, Any]


@dataclass(frozen=True)
class Capabilities:
    """What VMs on this hypervisor can do; callers choose install media and checks by these,
    never by the driver's name."""

    #: Boots a kernel and initrd given as local files (libvirt); without it an install
    #: boots from CD-ROMs, the kickstart on a second one labelled OEMDRV (vSphere).
    kernel_boot: bool
    #: Bases a VM's disk on a local qcow2 image (the `image` install method).
    disk_from_image: bool
    #: Packages a guest needs for the hypervisor to see its addresses and shut it down
    #: gracefully (VMware tools on vSphere).
    guest_packages: tuple[str, ...] = ()
    #: Its networks give a guest a resolver of their own (dnsmasq, qemu's user mode); False:
    #: the guest keeps the DHCP lease's servers.
    network_resolver: bool = True


class DriverKind(abc.ABC):
    """A driver's knowledge that needs no connection; ``open`` builds the driver."""

    name: str
    capabilities: Capabilities
    #: (module, class) of the driver, and of the part of it the read-only commands use.
    driver: tuple[str, str]
    reader: tuple[str, str]

    @abc.abstractmethod
    def options(self, section: Section) -> dict[str, Any]:
        """The driver's constructor arguments from a hypervisor section, secrets looked up
        where the section says they are (never stored in it)."""

    @abc.abstractmethod
    def uri(self, section: Section) -> str:
        """The hypervisor as a lab's state and messages name it (no secret in it)."""

    def check_network_name(self, value: object) -> str:
        """``value`` if it may name a network on this hypervisor (a profile's
        ``network_name``); InvalidName otherwise. Default: a libvirt object name."""
        return check_hypervisor_name("network name", value)

    def host_address(self, network: NetworkSpec) -> tuple[str, str]:
        """(address to listen on, address the guest uses) for a service on this machine that
        a guest on ``network`` reaches: by default the host's own address on the network."""
        address = network.host_address or next(network.subnet.hosts())
        return str(address), str(address)

    def guest_resolver(self, network: NetworkSpec) -> ipaddress.IPv4Address | None:
        """The name server a guest on ``network`` has there; None: the one DHCP hands out."""
        if not self.capabilities.network_resolver:
            return None
        return network.host_address or next(network.subnet.hosts())

    def open(self, section: Section) -> Driver:
        """The driver connected to the hypervisor ``section`` names."""
        return self.load(self.driver)(**self.options(section))

    def open_reader(self, section: Section) -> Any:
        """The reading part of the driver (find, state, snapshot_list, ssh_endpoint,
        console_log_path, glance), connected as ``open`` would."""
        return self.load(self.reader)(**self.options(section))

    def load(self, where: tuple[str, str]) -> Any:
        module_name, class_name = where
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise InfrastructureError(
                f"the {self.name} driver cannot be loaded: {exc}",
                hint=f"install vmlab with the {self.name!r} extra: "
                     f"pip install 'vmlab[{self.name}]'") from exc
        return getattr(module, class_name)

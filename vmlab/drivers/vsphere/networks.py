"""Port groups: an existing one for ``nat``/``user`` NICs, a host-only one for ``isolated``.

vSphere has no NAT of its own, so a NIC of kind ``nat`` or ``user`` attaches to a port group
that must exist. An ``isolated`` network is a port group on a standard vSwitch with no
uplinks (host-only), made on the VM's host when missing. The vSwitch is named
``vmlab-<hash of the port group name>`` because vSwitch names are limited to 32 characters.
"""
from __future__ import annotations

import hashlib

from pyVmomi import vim, vmodl

from vmlab.drivers.base import NetworkSpec
from vmlab.drivers.vsphere.session import fault_text, retrieve
from vmlab.errors import DriverError

SWITCH_PREFIX = "vmlab-"


def switch_name(port_group: str) -> str:
    return SWITCH_PREFIX + hashlib.sha256(port_group.encode()).hexdigest()[:12]


def networks(datacenter: vim.Datacenter, host: vim.HostSystem) -> dict[str, vim.Network]:
    """Networks by name: the datacenter's (where vCenter lists new port groups) and the host's."""
    found = {n.name: n for n in datacenter.network}
    found.update({n.name: n for n in host.network})
    return found


def backing(network: vim.Network) -> vim.vm.device.VirtualDevice.BackingInfo:
    """A NIC's backing: a standard port group by name, a distributed one by its switch."""
    if isinstance(network, vim.dvs.DistributedVirtualPortgroup):
        switch = network.config.distributedVirtualSwitch
        return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
            port=vim.dvs.PortConnection(portgroupKey=network.key, switchUuid=switch.uuid))
    return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name,
                                                                network=network)


def find(datacenter: vim.Datacenter, host: vim.HostSystem, spec: NetworkSpec) -> vim.Network:
    """The existing port group a ``nat``/``user`` NIC attaches to."""
    existing = networks(datacenter, host)
    if spec.name in existing:
        return existing[spec.name]
    raise DriverError(
        f"no port group named {spec.name!r} for the {spec.kind} network on host "
        f"{host.name!r}; there are: {', '.join(sorted(existing)) or 'none'}",
        hint="vSphere has no NAT of its own: set the NIC's network_name to an existing port "
             "group with DHCP and outside access")


def ensure_isolated(datacenter: vim.Datacenter, host: vim.HostSystem,
                    name: str) -> tuple[vim.Network, bool]:
    """The host-only port group ``name`` and whether it was made now."""
    existing = networks(datacenter, host)
    if name in existing:
        return existing[name], False
    system = host.configManager.networkSystem
    switch = switch_name(name)
    try:
        system.AddVirtualSwitch(vswitchName=switch,
                                spec=vim.host.VirtualSwitch.Specification(numPorts=128))
    except vim.fault.AlreadyExists:
        pass  # left behind by an interrupted run: reuse it
    except vmodl.MethodFault as exc:
        raise DriverError(f"creating the vSwitch for port group {name!r} on host "
                          f"{host.name!r} failed: {fault_text(exc)}",
                          hint="the vSphere user needs Host > Configuration > Network "
                               "configuration") from exc
    try:
        system.AddPortGroup(portgrp=vim.host.PortGroup.Specification(
            name=name, vlanId=0, vswitchName=switch, policy=vim.host.NetworkPolicy()))
    except vmodl.MethodFault as exc:
        _remove_switch(system, switch)
        raise DriverError(f"creating port group {name!r} on host {host.name!r} failed: "
                          f"{fault_text(exc)}") from exc
    network = networks(datacenter, host).get(name)
    if network is None:
        remove(host, name)
        raise DriverError(f"port group {name!r} was made on host {host.name!r} but vSphere "
                          "does not list it as a network")
    return network, True


def in_use(si: vim.ServiceInstance, datacenter: vim.Datacenter, host: vim.HostSystem,
           name: str) -> bool:
    """Whether any VM of the datacenter has a NIC on the port group.

    Read from the VMs' ``network`` lists rather than the network's ``vm`` list, which the
    simulator does not keep.
    """
    network = networks(datacenter, host).get(name)
    if network is None:
        return False
    return any(network in (props.get("network") or [])
               for _, props in retrieve(si, datacenter, vim.VirtualMachine, ["network"]))


def remove(host: vim.HostSystem, name: str) -> None:
    """Remove the port group and, when vmlab made it and it is now empty, its vSwitch."""
    system = host.configManager.networkSystem
    info = system.networkInfo
    switch = next((pg.spec.vswitchName for pg in info.portgroup or [] if pg.spec.name == name),
                  None)
    if switch is None:
        return  # already gone
    try:
        system.RemovePortGroup(pgName=name)
    except vim.fault.NotFound:
        pass
    except vmodl.MethodFault as exc:
        raise DriverError(f"removing port group {name!r} from host {host.name!r} failed: "
                          f"{fault_text(exc)}") from exc
    if switch.startswith(SWITCH_PREFIX):
        _remove_switch(system, switch)


def _remove_switch(system: vim.host.NetworkSystem, switch: str) -> None:
    for vswitch in system.networkInfo.vswitch or []:
        if vswitch.name == switch and not vswitch.portgroup and not vswitch.pnic:
            try:
                system.RemoveVirtualSwitch(vswitchName=switch)
            except vmodl.MethodFault:
                pass  # an empty vSwitch without uplinks harms nothing

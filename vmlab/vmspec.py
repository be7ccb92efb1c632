"""From a profile to the driver's VMSpec: names, MACs, networks and the guest's seed."""
from __future__ import annotations

from typing import Any

from vmlab.paths import home_id
from vmlab.drivers.base import DiskSpec, KernelBoot, NetworkSpec, NicSpec, VMSpec
from vmlab.profile import Hypervisor, LibvirtHypervisor, Nic, Profile


def vm_name(lab: str) -> str:
    return f"vmlab-{lab}"


def network_spec(lab: str, nic: Nic) -> NetworkSpec:
    hosts = list(nic.subnet.hosts())
    default_name = f"vmlab-{lab}-{nic.role}"
    return NetworkSpec(
        kind=nic.network,
        name=nic.network_name or default_name,
        subnet=nic.subnet,
        host_address=hosts[0] if hosts else None,
        dhcp=nic.network == "nat",
    )


def nic_specs(lab: str, profile: Profile) -> tuple[NicSpec, ...]:
    specs = []
    for nic in profile.vm.nics:
        forward = profile.ssh.port if nic.role == "provider" and nic.network == "user" else None
        specs.append(NicSpec(role=nic.role, network=network_spec(lab, nic),
                             mac=nic.mac_for(lab), forward_port=forward))
    return tuple(specs)


def static_addresses(lab: str, profile: Profile) -> list[tuple[str, str, int, str | None]]:
    """(mac, address, prefix, gateway) for every NIC with a static address."""
    rows = []
    for nic in profile.vm.nics:
        if nic.address is not None:
            rows.append((nic.mac_for(lab), str(nic.address), nic.prefix,
                         str(nic.gateway) if nic.gateway else None))
    return rows


def dhcp_macs(lab: str, profile: Profile) -> tuple[str, ...]:
    """The MACs of the NICs on a NAT network without a static address: they take the
    address the network's DHCP server (libvirt's dnsmasq) leases them."""
    return tuple(nic.mac_for(lab) for nic in profile.vm.nics
                 if nic.network == "nat" and nic.address is None)


def build_vm_spec(lab: str, profile: Profile, *, disk: DiskSpec,
                  boot: KernelBoot | None = None,
                  guest_data: tuple[tuple[str, str], ...] = (),
                  cdroms: tuple[Any, ...] = (), guest_os: str = "linux") -> VMSpec:
    return VMSpec(
        name=vm_name(lab),
        lab=lab,
        cpus=profile.vm.cpus,
        memory_mib=profile.vm.memory_mib,
        disk=disk,
        nics=nic_specs(lab, profile),
        boot=boot,
        cdroms=tuple(cdroms),
        guest_data=guest_data,
        accel=profile.vm.accel,
        guest_os=guest_os,
        home=home_id(),
        ssh_address=ssh_address(profile),
    )


def ssh_address(profile: Profile) -> str | None:
    """The static address on a hypervisor network that SSH reaches the guest at: the
    management NIC's, else the provider's; None when neither NIC has one (the DHCP lease)."""
    for role in ("management", "provider"):
        nic = profile.vm.nic(role)
        if nic is not None and nic.network in ("nat", "isolated") and nic.address is not None:
            return str(nic.address)
    return None


def driver_options(hv: Hypervisor, password: str | None = None) -> dict[str, Any]:
    """Connection options for vmlab.drivers.connect() from a hypervisor section (a profile's,
    or the one a lab's state recorded)."""
    from vmlab.labview import driver_options as options

    return options(hv.model_dump(mode="json"), password)


def hypervisor_uri(hv: Hypervisor) -> str:
    if isinstance(hv, LibvirtHypervisor):
        return hv.uri
    return f"vsphere://{hv.user}@{hv.host}:{hv.port}"


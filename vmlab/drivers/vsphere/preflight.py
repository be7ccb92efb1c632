"""What creating a VM needs from vSphere, read without changing anything: the login and the
place VMs go (both proven by the connected driver), room on the datastore, the port groups,
memory and CPUs of the host."""
from __future__ import annotations

from typing import TYPE_CHECKING

from vmlab.drivers.base import Check, VMSpec
from vmlab.drivers.vsphere import networks

if TYPE_CHECKING:
    from vmlab.drivers.vsphere import VsphereDriver

GIB = 1 << 30
MIB = 1 << 20


def checks(driver: VsphereDriver, spec: VMSpec, media_bytes: int) -> list[Check]:
    about = driver.content.about
    return [
        Check("hypervisor", "credentials", "ok",
              f"logged in to {about.fullName or 'vSphere'} at {driver.host}:{driver.port}"),
        Check("hypervisor", "placement", "ok",
              f"datacenter {driver.datacenter.name}, host {driver.host_system.name}, "
              f"datastore {driver.datastore.name}, folder {driver.folder.name}"),
        datastore_room(driver, spec, media_bytes),
        *port_groups(driver, spec),
        *memory_and_cpus(driver, spec),
    ]


def datastore_room(driver: VsphereDriver, spec: VMSpec, media_bytes: int) -> Check:
    store = driver.datastore
    summary = store.summary
    name = f"datastore {store.name}"
    if not summary.accessible:
        return Check("storage", name, "fail", "the datastore is not accessible",
                     "bring it back in the vSphere client, or set hypervisor.datastore to "
                     "another one")
    free, disk = summary.freeSpace, spec.disk.size_gib * GIB
    needs = (f"{media_bytes / GIB:.1f} GiB of install media + " if media_bytes else "") + \
        f"a thin disk that grows to {spec.disk.size_gib} GiB"
    if free < media_bytes:
        return Check("storage", name, "fail", f"{free / GIB:.1f} GiB free; the install media "
                     f"alone need {media_bytes / GIB:.1f} GiB",
                     "free space there, or set hypervisor.datastore to one with room")
    if free < media_bytes + disk:
        return Check("storage", name, "warn", f"{free / GIB:.1f} GiB free; the lab needs "
                     f"{needs} (snapshots add to that)",
                     "free space there, or lower vm.disk_gib")
    return Check("storage", name, "ok", f"{free / GIB:.1f} GiB free for {needs}")


def port_groups(driver: VsphereDriver, spec: VMSpec) -> list[Check]:
    existing = networks.networks(driver.datacenter, driver.host_system)
    host = driver.host_system.name
    results = []
    for nic in spec.nics:
        name = f"{nic.role} port group {nic.network.name}"
        if nic.network.name in existing:
            results.append(Check("network", name, "ok", f"exists on host {host}"))
        elif nic.network.kind == "isolated":
            results.append(Check("network", name, "ok", f"vmlab makes it on host {host} "
                                 "(host-only: a vSwitch without uplinks)"))
        else:
            results.append(Check(
                "network", name, "fail",
                f"no port group of that name on host {host}; there are: "
                f"{', '.join(sorted(existing)) or 'none'}",
                "vSphere has no NAT of its own: set the NIC's network_name to an existing "
                "port group with DHCP and outside access"))
    return results


def memory_and_cpus(driver: VsphereDriver, spec: VMSpec) -> list[Check]:
    summary = driver.host_system.summary
    hardware = summary.hardware
    total_mib = hardware.memorySize // MIB
    used_mib = summary.quickStats.overallMemoryUsage or 0
    free_mib = total_mib - used_mib
    wanted = spec.memory_mib
    if total_mib < wanted:
        memory = Check("memory", "memory", "fail",
                       f"the VM needs {wanted} MiB; host {driver.host_system.name} has "
                       f"{total_mib} MiB in all", f"set vm.memory_mib below {total_mib}")
    elif free_mib < wanted:
        memory = Check("memory", "memory", "warn",
                       f"the VM needs {wanted} MiB; {free_mib} MiB of {total_mib} are free on "
                       f"host {driver.host_system.name}",
                       "power off other VMs there, or lower vm.memory_mib")
    else:
        memory = Check("memory", "memory", "ok", f"the VM needs {wanted} MiB; {free_mib} MiB "
                       f"free of {total_mib}")
    threads = hardware.numCpuThreads
    if spec.cpus > threads:
        cpu = Check("memory", "CPUs", "fail",
                    f"the VM has {spec.cpus} vCPUs; host {driver.host_system.name} has "
                    f"{threads} CPU threads (vSphere refuses more)",
                    f"set vm.cpus to at most {threads}")
    else:
        cpu = Check("memory", "CPUs", "ok", f"the VM has {spec.cpus} vCPUs; the host has "
                    f"{threads} CPU threads")
    return [memory, cpu]

"""What creating a VM needs from a libvirt host, read without changing anything: the daemon,
KVM, the networks, room in the storage pool, memory and CPUs."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import libvirt

from vmlab.drivers.base import Check, VMSpec
from vmlab.drivers.libvirt import networks, storage

if TYPE_CHECKING:
    from vmlab.drivers.libvirt.driver import LibvirtDriver

GIB = 1 << 30
MIB = 1 << 20
#: Measured on this project's test hosts: package installs in a guest under TCG took
#: roughly 5 to 10 times as long as under KVM.
TCG_SLOWDOWN = "roughly 5-10x slower for package installs"
KVM_FIX = ("enable hardware virtualisation (VT-x/AMD-V) in the firmware, or nested "
           "virtualisation on the machine this host runs in; load kvm_intel or kvm_amd and let "
           "libvirt open /dev/kvm")


def checks(driver: LibvirtDriver, spec: VMSpec, media_bytes: int) -> list[Check]:
    return [daemon(driver), acceleration(driver, spec), *network_checks(driver, spec),
            storage_room(driver, spec, media_bytes), *memory_and_cpus(driver, spec)]


def _version(number: int) -> str:
    return f"{number // 1_000_000}.{number // 1000 % 1000}.{number % 1000}"


def daemon(driver: LibvirtDriver) -> Check:
    where = "this machine" if driver.local else driver.remote_host
    try:
        version = _version(driver.conn.getLibVersion())
    except libvirt.libvirtError:
        version = "version unknown"
    return Check("hypervisor", "libvirt", "ok",
                 f"{driver.uri} answers (libvirt {version}, on {where})")


def acceleration(driver: LibvirtDriver, spec: VMSpec) -> Check:
    accel = driver.acceleration()
    if accel == "kvm":
        return Check("hypervisor", "acceleration", "ok", "KVM")
    if spec.accel == "tcg":
        return Check("hypervisor", "acceleration", "ok", "TCG, as the profile asks (vm.accel)")
    if spec.accel == "kvm":
        return Check("hypervisor", "acceleration", "fail",
                     "the profile asks for KVM (vm.accel: kvm) but this host has none",
                     f"{KVM_FIX}; or set vm.accel: auto to run under TCG")
    return Check("hypervisor", "acceleration", "warn",
                 f"no usable KVM: the guest runs under TCG (software emulation), {TCG_SLOWDOWN}",
                 f"for full speed: {KVM_FIX}")


def network_checks(driver: LibvirtDriver, spec: VMSpec) -> list[Check]:
    bridged = [nic for nic in spec.nics if nic.network.kind in networks.BRIDGED]
    if not bridged:
        return [Check("network", "networks", "ok",
                      "user-mode NICs only: the lab adds no network to the host")]
    existing = networks.existing_networks(driver.conn)
    routes = networks.host_routes() if driver.local else None
    found = {c.role: c for c in networks.collisions(spec.nics, existing, routes, driver.uri)}
    names = {network.name for network in existing}
    results = []
    for nic in bridged:
        name = f"{nic.role} network {nic.network.name} ({nic.network.subnet})"
        collision = found.get(nic.role)
        if collision is not None:
            results.append(Check("network", name, "fail", collision.problem, collision.fix))
        elif nic.network.name in names:
            results.append(Check("network", name, "ok", "exists and runs: used as it is"))
        else:
            what = " or host route" if routes is not None else ""
            results.append(Check("network", name, "ok",
                                 f"free: no libvirt network{what} overlaps it; vmlab makes it"))
    if not driver.local:
        results.append(Check("network", "host routes", "warn",
                             f"not checked: the hypervisor is {driver.remote_host}, and its "
                             "routes cannot be read from here",
                             f"on {driver.remote_host}, compare `ip route` with the subnets "
                             "above"))
    elif routes is None:
        results.append(Check("network", "host routes", "warn",
                             "not checked: `ip -j route` gave nothing readable",
                             "install iproute2, or compare `ip route` with the subnets above"))
    return results


def storage_room(driver: LibvirtDriver, spec: VMSpec, media_bytes: int) -> Check:
    """Room for the uploaded media (ISO, kernel, image) and for the disk to grow to its size."""
    disk = spec.disk.size_gib * GIB
    name = f"storage pool {driver.pool_name}"
    try:
        pool = driver.conn.storagePoolLookupByName(driver.pool_name)
    except libvirt.libvirtError:
        pool = None
    if pool is not None and pool.isActive():
        free = pool.info()[3]
        where = f"pool {driver.pool_name}"
    elif pool is not None:
        return Check("storage", name, "warn", "the pool is defined but not running: its free "
                     "space is unknown", f"virsh -c {driver.uri} pool-start {driver.pool_name}")
    elif driver.local:
        path = Path(driver.pool_path or storage.DEFAULT_POOL_PATH)
        free = _free_bytes(path)
        where = f"{path} (the pool does not exist yet; vmlab makes it there)"
    else:
        return Check("storage", name, "warn",
                     f"not checked: the pool does not exist yet on {driver.remote_host}",
                     f"make sure {driver.pool_path or storage.DEFAULT_POOL_PATH} there has "
                     f"{(media_bytes + disk) / GIB:.1f} GiB free")
    needs = (f"{media_bytes / GIB:.1f} GiB of install media + " if media_bytes else "") + \
        f"a disk that grows to {spec.disk.size_gib} GiB"
    if free < media_bytes:
        return Check("storage", name, "fail",
                     f"{free / GIB:.1f} GiB free in {where}; the install media alone need "
                     f"{media_bytes / GIB:.1f} GiB", "free space there, or set "
                     "hypervisor.pool to a pool with room")
    if free < media_bytes + disk:
        return Check("storage", name, "warn",
                     f"{free / GIB:.1f} GiB free in {where}; the lab needs {needs} (snapshots "
                     "add to that): it may fill the pool", "free space there, or lower "
                     "vm.disk_gib")
    return Check("storage", name, "ok", f"{free / GIB:.1f} GiB free in {where} for {needs}")


def _free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def memory_and_cpus(driver: LibvirtDriver, spec: VMSpec) -> list[Check]:
    info = driver.conn.getInfo()  # [arch, memory MiB, CPUs, MHz, nodes, sockets, cores, threads]
    total_mib, available = _memory_mib(driver.conn, info[1])
    cpus = info[2]
    wanted = spec.memory_mib
    if total_mib < wanted:
        memory = Check("memory", "memory", "fail",
                       f"the VM needs {wanted} MiB; the host has {total_mib} MiB in all",
                       f"set vm.memory_mib below {total_mib}")
    elif available is not None and available < wanted:
        memory = Check("memory", "memory", "warn",
                       f"the VM needs {wanted} MiB; {available} MiB of {total_mib} are free now",
                       "stop other VMs or programs, or lower vm.memory_mib")
    else:
        free = f"{available} MiB free of {total_mib}" if available is not None \
            else f"{total_mib} MiB in all (free memory not reported)"
        memory = Check("memory", "memory", "ok", f"the VM needs {wanted} MiB; {free}")
    if spec.cpus > cpus:
        cpu = Check("memory", "CPUs", "warn",
                    f"the VM has {spec.cpus} vCPUs; the host has {cpus} CPUs, which they share",
                    f"set vm.cpus to at most {cpus}")
    else:
        cpu = Check("memory", "CPUs", "ok", f"the VM has {spec.cpus} vCPUs; the host has "
                    f"{cpus} CPUs")
    return [memory, cpu]


def _memory_mib(conn: libvirt.virConnect, info_mib: int) -> tuple[int, int | None]:
    """(total, available) MiB of the host; available counts what the kernel can give back
    (page cache, buffers). The node's memory statistics are preferred: getInfo's figure can
    be one NUMA cell's."""
    try:
        stats = conn.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS, 0)
        available = stats.get("free", 0) + stats.get("buffers", 0) + stats.get("cached", 0)
        return max(stats.get("total", 0) // 1024, info_mib), available // 1024
    except libvirt.libvirtError:
        pass
    try:
        free = conn.getFreeMemory()
    except libvirt.libvirtError:
        return info_mib, None
    return info_mib, (free // MIB if free else None)

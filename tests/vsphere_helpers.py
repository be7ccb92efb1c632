"""What the vSphere driver tests share: specs of test VMs, a driver on the simulator, and
ways to look at what the driver made through pyVmomi (the simulator's inventory)."""
from __future__ import annotations

import io
import ipaddress
import itertools
import os
from pathlib import Path

import pycdlib
from pyVmomi import vim

from vmlab.drivers.base import DiskSpec, NetworkSpec, NicSpec, VMRef, VMSpec
from vmlab.drivers.vsphere import VsphereDriver
from vmlab.drivers.vsphere.session import wait_task

HOST = "DC0_H0"  # the simulator has two hosts (DC0_H0 and DC0_C0_H0): the tests name one
SIM_VM = "DC0_H0_VM0"  # a VM of the simulator's own, without vmlab's tag
PROVIDER_MAC, MANAGEMENT_MAC = "00:50:56:00:10:01", "52:54:00:00:10:02"
_names = itertools.count()


def nics(lab: str, provider: str = "VM Network") -> tuple[NicSpec, ...]:
    return (NicSpec("provider", NetworkSpec("nat", provider, ipaddress.ip_network("10.0.0.0/24")),
                    PROVIDER_MAC),
            NicSpec("management", NetworkSpec("isolated", f"vmlab-{lab}-management",
                                              ipaddress.ip_network("192.168.70.0/24")),
                    MANAGEMENT_MAC))


def spec(**changes) -> VMSpec:
    lab = f"vs{os.getpid()}-{next(_names)}"
    base = dict(name=f"vmlab-{lab}", lab=lab, cpus=2, memory_mib=256, disk=DiskSpec(3),
                nics=nics(lab), guest_os="centos7", guest_data=(("hostname", "controller"),),
                home="home-a")
    base.update(changes)
    return VMSpec(**base)


def open_driver(vcsim, **options) -> VsphereDriver:
    options = {"port": vcsim.port, "insecure": True, "host_system": HOST, **options}
    return VsphereDriver(vcsim.host, vcsim.user, vcsim.password, **options)


def make_untagged(driver: VsphereDriver, name: str) -> None:
    config = vim.vm.ConfigSpec(name=name, guestId="otherLinux64Guest", numCPUs=1, memoryMB=64,
                               files=vim.vm.FileInfo(vmPathName=f"[{driver.datastore.name}]"))
    wait_task(driver.folder.CreateVM_Task(config=config, pool=driver.pool,
                                          host=driver.host_system), "creating an untagged VM")


def port_groups(driver: VsphereDriver) -> dict[str, str]:
    """Port group -> its vSwitch on the test host."""
    info = driver.host_system.configManager.networkSystem.networkInfo
    return {pg.spec.name: pg.spec.vswitchName for pg in info.portgroup}


def vswitches(driver: VsphereDriver) -> dict[str, vim.host.VirtualSwitch]:
    info = driver.host_system.configManager.networkSystem.networkInfo
    return {v.name: v for v in info.vswitch}


def devices(driver: VsphereDriver, ref: VMRef, kind: type) -> list:
    vm, _ = driver._vm(ref)
    return [d for d in vm.config.hardware.device if isinstance(d, kind)]


def media_files(driver: VsphereDriver, ref: VMRef) -> list[str]:
    """The VM's CD-ROM images, relative to the datastore."""
    prefix = f"[{driver.datastore.name}] "
    return [d.backing.fileName.removeprefix(prefix)
            for d in devices(driver, ref, vim.vm.device.VirtualCdrom)]


def make_iso(path: Path, text: str = "install\n") -> Path:
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, vol_ident="OEMDRV")
    data = text.encode()
    image.add_fp(io.BytesIO(data), len(data), "/KS.CFG;1")
    image.write(str(path))
    image.close()
    return path


def give_addresses(driver: VsphereDriver, ref: VMRef, addresses: dict[str, str]) -> None:
    """What VMware tools would report: guest customization with fixed addresses, which the
    simulator applies to guest.net at the next power-on."""
    vm, _ = driver._vm(ref)
    custom = vim.vm.customization
    mapping = [custom.AdapterMapping(macAddress=mac, adapter=custom.IPSettings(
        ip=custom.FixedIp(ipAddress=ip), subnetMask="255.255.255.0"))
        for mac, ip in addresses.items()]
    spec_ = custom.Specification(
        identity=custom.LinuxPrep(hostName=custom.FixedName(name="controller"), domain="lab"),
        globalIPSettings=custom.GlobalIPSettings(), nicSettingMap=mapping)
    wait_task(vm.CustomizeVM_Task(spec=spec_), "customizing")

"""The vSphere driver against a real vSphere simulator (govmomi's vcsim, built in set-up)."""
from __future__ import annotations

import io
import ipaddress
import itertools
import os

import pycdlib
import pytest
from pyVmomi import vim

from tests.driver_contract import DriverContract
from vmlab.drivers.base import DiskSpec, NetworkSpec, NicSpec, PowerState, VMSpec
from vmlab.drivers.vsphere import VsphereDriver
from vmlab.errors import DriverError, InfrastructureError, NotOwned

_names = itertools.count()


def nics(lab: str) -> tuple[NicSpec, ...]:
    return (NicSpec("provider", NetworkSpec("nat", "VM Network",
                                            ipaddress.ip_network("10.0.0.0/24")),
                    "00:50:56:00:10:01"),
            NicSpec("management", NetworkSpec("isolated", f"vmlab-{lab}-mgmt",
                                              ipaddress.ip_network("192.168.70.0/24")),
                    "00:50:56:00:10:02"))


def spec(**changes) -> VMSpec:
    lab = f"vs{os.getpid()}-{next(_names)}"
    base = dict(name=f"vmlab-{lab}", lab=lab, cpus=1, memory_mib=256, disk=DiskSpec(1),
                nics=nics(lab), guest_os="centos7", guest_data=(("hostname", "controller"),))
    base.update(changes)
    return VMSpec(**base)


@pytest.fixture
def driver(vcsim):
    host, port, user, password = vcsim
    with VsphereDriver(host, user, password, port=port, insecure=True) as driver:
        yield driver


class TestContractOnVcsim(DriverContract):
    @pytest.fixture
    def make_spec(self):
        return spec

    def make_untagged_vm(self, driver, name):
        config = vim.vm.ConfigSpec(name=name, guestId="otherLinux64Guest", numCPUs=1,
                                   memoryMB=64,
                                   files=vim.vm.FileInfo(vmPathName=f"[{driver.datastore.name}]"))
        driver._wait(driver.folder.CreateVM_Task(config=config, pool=driver.pool),
                     "creating an untagged VM")

    def assert_no_leftovers(self, driver, spec):
        assert not [n for n in driver._networks() if n.startswith(spec.name)]


def test_created_vm_has_the_manuals_hardware(driver):
    s = spec()
    ref = driver.create(s)
    try:
        vm = driver._vm(ref)
        assert vm.config.guestId == "centos7_64Guest"
        cards = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualVmxnet3)]
        assert sorted(c.macAddress for c in cards) == ["00:50:56:00:10:01", "00:50:56:00:10:02"]
        assert {c.backing.deviceName for c in cards} == {"VM Network", f"{s.name}-mgmt"}
        disk = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
        assert disk.backing.thinProvisioned
        assert driver._extra(vm, "guestinfo.vmlab.hostname") == "controller"
        assert driver._extra(vm, "vmlab.lab") == s.lab
        system = driver.host_system.configManager.networkSystem
        switch = next(v for v in system.networkInfo.vswitch if v.name == f"{s.name}-mgmt")
        assert not switch.pnic  # host-only: no uplinks
    finally:
        driver.destroy(ref)
    assert f"{s.name}-mgmt" not in driver._networks()


def test_a_powered_on_snapshot_tree_reverts_to_the_nested_one(driver):
    ref = driver.create(spec())
    try:
        driver.start(ref)
        for name in ("base", "keystone", "glance"):
            driver.snapshot_create(ref, name, live=True)
        driver.snapshot_revert(ref, "keystone")
        current = [s for s in driver.snapshot_list(ref) if s.current]
        assert [s.name for s in current] == ["keystone"] and current[0].parent == "base"
        assert driver.state(ref) == PowerState.RUNNING
        driver.snapshot_delete(ref, "base", children=True)
        assert driver.snapshot_list(ref) == []
    finally:
        driver.destroy(ref)


def test_the_simulators_own_vm_is_left_alone(driver):
    ref = driver.find("DC0_H0_VM0")
    assert ref is not None and ref.lab is None
    with pytest.raises(NotOwned):
        driver.destroy(ref)
    assert driver.find("DC0_H0_VM0") is not None
    assert "DC0_H0_VM0" not in [o.name for o in driver.list_owned()]


def test_bad_credentials_are_a_clear_error(vcsim):
    host, port, user, _ = vcsim
    with pytest.raises(DriverError, match="refused the login") as info:
        VsphereDriver(host, user, "wrong", port=port, insecure=True)
    assert "password_env" in info.value.hint


def test_an_untrusted_certificate_is_refused_by_default(vcsim):
    host, port, user, password = vcsim
    with pytest.raises(InfrastructureError, match="not trusted") as info:
        VsphereDriver(host, user, password, port=port)
    assert "insecure: true" in info.value.hint


def test_a_missing_datastore_names_the_ones_that_exist(vcsim):
    host, port, user, password = vcsim
    with pytest.raises(DriverError, match="no datastore named 'nope'") as info:
        VsphereDriver(host, user, password, port=port, insecure=True, datastore="nope")
    assert "LocalDS_0" in info.value.hint


def test_a_missing_provider_port_group_lists_the_existing_ones(driver):
    s = spec()
    broken = (NicSpec("provider", NetworkSpec("nat", "NoSuchNet",
                                              ipaddress.ip_network("10.0.0.0/24")),
                      "00:50:56:00:10:01"),)
    with pytest.raises(DriverError, match="NoSuchNet") as info:
        driver.create(VMSpec(**{**s.__dict__, "nics": broken}))
    assert "VM Network" in info.value.hint
    assert driver.find(s.name) is None


def make_iso(path):
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, vol_ident="OEMDRV")
    data = b"install\n"
    image.add_fp(io.BytesIO(data), len(data), "/KS.CFG;1")
    image.write(str(path))
    image.close()


def test_iso_is_uploaded_once_and_attached(driver, tmp_path):
    iso = tmp_path / "oemdrv.iso"
    make_iso(iso)
    messages: list[str] = []
    first = spec(cdroms=(iso,))
    ref = driver.create(first, progress=messages.append)
    try:
        vm = driver._vm(ref)
        cdrom = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom))
        assert cdrom.backing.fileName == f"[LocalDS_0] {first.name}/oemdrv.iso"
        assert any("uploading oemdrv.iso" in m for m in messages)
        messages.clear()
        driver._upload(iso, f"{first.name}/oemdrv.iso", messages.append)
        assert messages == ["oemdrv.iso is already on the datastore"]
        driver.set_kernel_boot(ref, None)  # after the install: boot from disk
        vm = driver._vm(ref)
        assert not [d for d in vm.config.hardware.device
                    if isinstance(d, vim.vm.device.VirtualCdrom)]
    finally:
        driver.destroy(ref)

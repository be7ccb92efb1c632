"""The vSphere driver against a real vSphere simulator (govmomi's vcsim, built in set-up by
tests/vsphere_sim/build.sh; see tests/vsphere_fixtures.py). No mocks: every call goes over
HTTPS to the simulator on 127.0.0.1."""
from __future__ import annotations

import dataclasses
import io
import ipaddress
import itertools
import os
import socket
import time
from pathlib import Path

import pycdlib
import pytest
from pyVmomi import vim

from tests.driver_contract import DriverContract
from vmlab import drivers
from vmlab.drivers.base import (DiskSpec, KernelBoot, NetworkSpec, NicSpec, PowerState, VMRef,
                                VMSpec)
from vmlab.drivers.vsphere import VsphereDriver, networks
from vmlab.drivers.vsphere.media import remote_name
from vmlab.drivers.vsphere.session import wait_task
from vmlab.errors import (DriverError, InfrastructureError, NotFound, NotOwned, SnapshotExists,
                          WaitTimeout)

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


@pytest.fixture
def driver(vcsim):
    with open_driver(vcsim) as driver:
        yield driver


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


# -- the shared driver contract -------------------------------------------------------------

class TestContractOnVcsim(DriverContract):
    @pytest.fixture
    def make_spec(self):
        return spec

    def make_untagged_vm(self, driver, name):
        make_untagged(driver, name)

    def assert_no_leftovers(self, driver, spec):
        assert not [n for n in port_groups(driver) if n.startswith(spec.name)]


# -- the simulator's own bugs, fixed by tests/vsphere_sim/*.patch -----------------------------

def test_patch_unset_snapshot_property_reads_as_none(driver):
    """02: reading vm.snapshot of a VM without snapshots crashed the simulator's Fetch."""
    ref = driver.create(spec())
    try:
        vm, _ = driver._vm(ref)
        assert vm.snapshot is None
        driver.snapshot_create(ref, "base")
        driver.snapshot_delete(ref, "base")
        assert vm.snapshot is None  # unset again after the last one goes
    finally:
        driver.destroy(ref)


def test_patch_snapshot_tasks_name_the_vm(driver):
    """01: revert and remove tasks named the snapshot as their entity: unreadable by pyVmomi."""
    ref = driver.create(spec())
    try:
        vm, _ = driver._vm(ref)
        driver.snapshot_create(ref, "base")
        node = vm.snapshot.rootSnapshotList[0]
        for task in (node.snapshot.RevertToSnapshot_Task(),
                     node.snapshot.RemoveSnapshot_Task(removeChildren=False)):
            wait_task(task, task.info.name)
            assert task.info.entity == vm and task.info.state == "success"
    finally:
        driver.destroy(ref)


def test_patch_deleting_the_current_subtree_moves_current_up(driver):
    """03: deleting keystone with its children while glance is current left current dangling."""
    ref = driver.create(spec())
    try:
        for name in ("base", "keystone", "glance"):
            driver.snapshot_create(ref, name)
        driver.snapshot_delete(ref, "keystone", children=True)
        assert [(s.name, s.current) for s in driver.snapshot_list(ref)] == [("base", True)]
    finally:
        driver.destroy(ref)


def test_patch_file_manager_tasks_are_readable(driver):
    """04: tasks of the FileManager named it as their entity, which is no ManagedEntity."""
    manager = driver.content.fileManager
    path = f"[{driver.datastore.name}] vmlab-patch-04"
    manager.MakeDirectory(name=path, datacenter=driver.datacenter)
    task = manager.DeleteDatastoreFile_Task(name=path, datacenter=driver.datacenter)
    wait_task(task, "removing a directory")
    assert task.info.state == "success" and task.info.entity is None


# -- create -----------------------------------------------------------------------------------

def test_created_vm_has_the_manuals_hardware(driver):
    s = spec()
    ref = driver.create(s)
    management = s.nics[1].network.name
    try:
        vm, _ = driver._vm(ref)
        assert vm.config.guestId == "centos7_64Guest"
        assert (vm.config.hardware.numCPU, vm.config.hardware.memoryMB) == (2, 256)
        cards = devices(driver, ref, vim.vm.device.VirtualVmxnet3)
        assert [(c.macAddress, c.addressType, c.backing.deviceName) for c in cards] == [
            (PROVIDER_MAC, "manual", "VM Network"), (MANAGEMENT_MAC, "manual", management)]
        disk, = devices(driver, ref, vim.vm.device.VirtualDisk)
        assert disk.backing.thinProvisioned and disk.capacityInKB == 3 << 20
        extra = {o.key: o.value for o in vm.config.extraConfig}
        assert extra["guestinfo.vmlab.hostname"] == "controller"
        assert extra["vmlab.lab"] == s.lab and extra["vmlab.home"] == "home-a"
        assert extra["vmlab.provider_mac"] == PROVIDER_MAC
        # 52:54:00:... is outside VMware's static range: vSphere is told to take it as is
        assert extra["ethernet1.checkMACAddress"] == "FALSE"
        assert "ethernet0.checkMACAddress" not in extra
        assert f"lab {s.lab}" in vm.config.annotation
        switch = port_groups(driver)[management]
        assert switch == networks.switch_name(management) and len(switch) <= 32
        assert not vswitches(driver)[switch].pnic  # host-only: no uplinks
    finally:
        driver.destroy(ref)
    assert management not in port_groups(driver)
    assert switch not in vswitches(driver)
    assert "VM Network" in port_groups(driver)  # the existing one is never removed


def test_a_provider_port_group_on_a_distributed_switch(driver):
    s = spec()
    ref = driver.create(dataclasses.replace(s, nics=nics(s.lab, provider="DC0_DVPG0")))
    try:
        card = devices(driver, ref, vim.vm.device.VirtualVmxnet3)[0]
        assert isinstance(card.backing,
                          vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo)
        assert card.macAddress == PROVIDER_MAC
    finally:
        driver.destroy(ref)


def test_other_guest_os_is_generic_linux(driver):
    ref = driver.create(spec(guest_os="linux"))
    try:
        vm, _ = driver._vm(ref)
        assert vm.config.guestId == "otherLinux64Guest"
    finally:
        driver.destroy(ref)


def test_a_name_in_use_and_unsupported_specs_are_refused_before_anything_is_made(driver, tmp_path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_text("k")
    s = spec()
    for broken, text in ((spec(name=SIM_VM), "already exists"),
                         (dataclasses.replace(s, boot=KernelBoot(kernel, kernel, "ro")),
                          "cannot boot a kernel"),
                         (dataclasses.replace(s, disk=DiskSpec(1, image=kernel)),
                          "local image")):
        with pytest.raises(DriverError, match=text):
            driver.create(broken)
    assert s.nics[1].network.name not in port_groups(driver)


def test_a_missing_provider_port_group_lists_the_existing_ones(driver):
    s = spec()
    # the isolated network comes first, so it is made before the provider one is missed
    broken = dataclasses.replace(s, nics=(nics(s.lab, provider="NoSuchNet")[1],
                                          nics(s.lab, provider="NoSuchNet")[0]))
    with pytest.raises(DriverError, match="NoSuchNet") as info:
        driver.create(broken)
    assert "VM Network" in info.value.message and "NAT" in info.value.hint
    assert driver.find(s.name) is None
    assert s.nics[1].network.name not in port_groups(driver)
    assert networks.switch_name(s.nics[1].network.name) not in vswitches(driver)


def test_a_create_failing_in_vsphere_removes_what_it_made(driver, tmp_path):
    """CreateVM_Task itself fails (the simulator refuses an empty name): the port group and
    the uploaded ISO made before it are removed again."""
    iso = make_iso(tmp_path / "oemdrv.iso", "only this test\n")
    s = spec(name="", cdroms=(iso,))
    with pytest.raises(DriverError, match="creating VM '' failed"):
        driver.create(s)
    assert s.nics[1].network.name not in port_groups(driver)
    assert not [o for o in driver.list_owned() if o.lab == s.lab]
    assert driver.files.size(remote_name(iso)) is None


def test_an_interrupted_create_removes_what_it_made(driver, tmp_path):
    first = make_iso(tmp_path / "install.iso", "first\n")
    second = make_iso(tmp_path / "oemdrv.iso", "second\n")
    s = spec(cdroms=(first, second))

    def progress(message: str) -> None:
        if message.startswith("uploading oemdrv.iso"):
            raise KeyboardInterrupt  # Ctrl-C half-way through the second upload

    with pytest.raises(KeyboardInterrupt):
        driver.create(s, progress=progress)
    assert driver.files.size(remote_name(first)) is None
    assert driver.files.size(remote_name(second)) is None
    assert s.nics[1].network.name not in port_groups(driver)
    assert driver.find(s.name) is None


# -- CD-ROM images ----------------------------------------------------------------------------

def test_iso_is_uploaded_once_shared_and_removed_with_its_last_vm(driver, tmp_path):
    iso = make_iso(tmp_path / "oemdrv.iso")
    messages: list[str] = []
    first = driver.create(spec(cdroms=(iso,)), progress=messages.append)
    remote, = media_files(driver, first)
    assert remote.startswith("vmlab-media/oemdrv-") and remote.endswith(".iso")
    assert messages[-1] == "uploading oemdrv.iso to LocalDS_0: 100%"
    assert driver.files.size(remote) == iso.stat().st_size
    messages.clear()
    second = driver.create(spec(cdroms=(iso,)), progress=messages.append)
    assert media_files(driver, second) == [remote]
    assert "oemdrv.iso is already on datastore LocalDS_0" in messages
    assert not [m for m in messages if m.startswith("uploading")]
    assert ("volume", f"[LocalDS_0] {remote}") in {(o.kind, o.name) for o in driver.list_owned()}
    driver.destroy(first)
    assert driver.files.size(remote) is not None  # the second VM still uses it
    driver.destroy(second)
    assert driver.files.size(remote) is None


def test_a_changed_iso_of_the_same_size_is_uploaded_again(driver, tmp_path):
    (tmp_path / "old").mkdir()
    old = make_iso(tmp_path / "old" / "oemdrv.iso", "rootpw one\n")
    new = make_iso(tmp_path / "oemdrv.iso", "rootpw two\n")
    assert old.stat().st_size == new.stat().st_size
    first = driver.create(spec(cdroms=(old,)))
    messages: list[str] = []
    second = driver.create(spec(cdroms=(new,)), progress=messages.append)
    try:
        assert media_files(driver, first) != media_files(driver, second)
        assert any(m.startswith("uploading oemdrv.iso") for m in messages)
    finally:
        driver.destroy(first)
        driver.destroy(second)


def test_after_the_install_the_cdroms_and_their_files_go(driver, tmp_path):
    iso = make_iso(tmp_path / "oemdrv.iso", "after install\n")
    ref = driver.create(spec(cdroms=(iso,)))
    try:
        remote, = media_files(driver, ref)
        with pytest.raises(DriverError, match="cannot change how a VM boots"):
            driver.set_kernel_boot(ref, KernelBoot(iso, iso, ""))
        driver.set_kernel_boot(ref, None)
        assert devices(driver, ref, vim.vm.device.VirtualCdrom) == []
        assert driver.files.size(remote) is None
        assert not [o for o in driver.list_owned() if o.kind == "volume" and remote in o.name]
    finally:
        driver.destroy(ref)


# -- lifecycle, networks, ownership -----------------------------------------------------------

def test_graceful_stop_and_a_stale_ref(driver):
    ref = driver.create(spec())
    driver.start(ref)
    driver.start(ref)  # already running: nothing to do
    driver.stop(ref)  # ShutdownGuest
    assert driver.state(ref) == PowerState.SHUTOFF
    driver.stop(ref)  # already off: nothing to do
    driver.destroy(ref)
    with pytest.raises(NotFound):
        driver.state(ref)


def test_a_suspended_vm_is_powered_off_by_stop(driver):
    ref = driver.create(spec())
    try:
        driver.start(ref)
        vm, _ = driver._vm(ref)
        wait_task(vm.SuspendVM_Task(), "suspending")
        assert driver.state(ref) == PowerState.PAUSED
        driver.stop(ref)  # no guest to ask: powered off
        assert driver.state(ref) == PowerState.SHUTOFF
    finally:
        driver.destroy(ref)


def test_a_fault_of_a_vsphere_call_is_a_driver_error(driver):
    ref = driver.create(spec())
    try:
        vm, _ = driver._vm(ref)
        vm.MarkAsTemplate()  # vSphere refuses to power on a template
        with pytest.raises(DriverError, match=f"starting VM '{ref.name}' failed: "):
            driver.start(ref)
    finally:
        driver.destroy(ref)


def test_an_isolated_port_group_shared_by_two_vms_goes_with_the_last(driver):
    first_spec = spec()
    second_spec = dataclasses.replace(spec(lab=first_spec.lab), nics=first_spec.nics)
    name = first_spec.nics[1].network.name
    first, second = driver.create(first_spec), driver.create(second_spec)
    owned = [(o.kind, o.name) for o in driver.list_owned() if o.lab == first_spec.lab]
    assert owned.count(("network", name)) == 1 and owned.count(("vm", second.name)) == 1
    driver.destroy(first)
    assert name in port_groups(driver)  # the second VM still uses it
    driver.destroy(second)
    assert name not in port_groups(driver)


def test_list_owned_names_lab_home_and_creation_time(driver):
    s = spec()
    ref = driver.create(s)
    try:
        rows = {(o.kind, o.name): o for o in driver.list_owned() if o.lab == s.lab}
        assert set(rows) == {("vm", s.name), ("network", s.nics[1].network.name)}
        vm = rows[("vm", s.name)]
        assert vm.home == "home-a" and vm.created is not None
        assert abs(time.time() - vm.created.timestamp()) < 60
    finally:
        driver.destroy(ref)


def test_the_simulators_own_vm_is_left_alone(driver):
    ref = driver.find(SIM_VM)
    assert ref is not None and ref.lab is None
    vm = driver.content.searchIndex.FindByUuid(datacenter=driver.datacenter, uuid=ref.uuid,
                                               vmSearch=True)
    power = vm.runtime.powerState
    for action in (lambda: driver.start(ref), lambda: driver.stop(ref, hard=True),
                   lambda: driver.stop(ref), lambda: driver.destroy(ref),
                   lambda: driver.state(ref), lambda: driver.snapshot_create(ref, "x"),
                   lambda: driver.snapshot_list(ref), lambda: driver.snapshot_revert(ref, "x"),
                   lambda: driver.snapshot_delete(ref, "x"),
                   lambda: driver.interface_addresses(ref), lambda: driver.ssh_endpoint(ref),
                   lambda: driver.set_kernel_boot(ref, None)):
        with pytest.raises(NotOwned):
            action()
    assert driver.find(SIM_VM) == ref
    assert vm.runtime.powerState == power and vm.snapshot is None
    assert SIM_VM not in [o.name for o in driver.list_owned()]


# -- snapshots --------------------------------------------------------------------------------

def test_a_live_snapshot_tree_reverts_to_the_nested_one_running(driver):
    ref = driver.create(spec())
    try:
        driver.start(ref)
        for name in ("base", "keystone", "glance"):
            taken = driver.snapshot_create(ref, name, f"before {name}", live=True)
            assert taken.state == PowerState.RUNNING and taken.current
        driver.stop(ref, hard=True)
        driver.snapshot_revert(ref, "keystone")
        assert driver.state(ref) == PowerState.RUNNING  # as it was when taken
        listed = driver.snapshot_list(ref)
        assert [(s.name, s.parent, s.current) for s in listed] == [
            ("base", None, False), ("keystone", "base", True), ("glance", "keystone", False)]
        assert [s.description for s in listed] == ["before base", "before keystone",
                                                   "before glance"]
        assert listed[0].created <= listed[1].created <= listed[2].created
        assert listed[0].created.tzinfo is not None
        with pytest.raises(SnapshotExists):
            driver.snapshot_create(ref, "glance", live=True)
        driver.snapshot_delete(ref, "base", children=True)
        assert driver.snapshot_list(ref) == []
    finally:
        driver.destroy(ref)


def test_reverting_to_a_stopped_snapshot_stops_the_vm(driver):
    ref = driver.create(spec())
    try:
        driver.snapshot_create(ref, "base")
        driver.start(ref)
        driver.snapshot_create(ref, "running", live=True)
        driver.snapshot_revert(ref, "base")
        assert driver.state(ref) == PowerState.SHUTOFF
        driver.snapshot_revert(ref, "running")
        assert driver.state(ref) == PowerState.RUNNING
    finally:
        driver.destroy(ref)


def test_deleting_a_middle_snapshot_keeps_its_children(driver):
    ref = driver.create(spec())
    try:
        for name in ("base", "keystone", "glance"):
            driver.snapshot_create(ref, name)
        driver.snapshot_delete(ref, "keystone")
        assert [(s.name, s.parent) for s in driver.snapshot_list(ref)] == [
            ("base", None), ("glance", "base")]
        with pytest.raises(NotFound):
            driver.snapshot_revert(ref, "keystone")
    finally:
        driver.destroy(ref)


# -- guest addresses --------------------------------------------------------------------------

def test_guest_addresses_and_the_ssh_endpoint(driver):
    ref = driver.create(spec())
    try:
        assert driver.interface_addresses(ref) == {PROVIDER_MAC: [], MANAGEMENT_MAC: []}
        with pytest.raises(InfrastructureError, match="no IPv4 address") as info:
            driver.ssh_endpoint(ref)
        assert "open-vm-tools" in info.value.hint
        with pytest.raises(WaitTimeout):
            driver.wait_for_ip(ref, PROVIDER_MAC, timeout=0.5, interval=0.1)
        give_addresses(driver, ref, {PROVIDER_MAC: "10.0.0.50", MANAGEMENT_MAC: "192.168.70.2"})
        driver.start(ref)
        assert driver.interface_addresses(ref) == {PROVIDER_MAC: ["10.0.0.50"],
                                                   MANAGEMENT_MAC: ["192.168.70.2"]}
        endpoint = driver.ssh_endpoint(ref, 2222)
        assert (endpoint.host, endpoint.port, endpoint.jump) == ("10.0.0.50", 2222, None)
        assert driver.wait_for_ip(ref, MANAGEMENT_MAC.upper(), timeout=5,
                                  within=ipaddress.ip_network("192.168.70.0/24")) == "192.168.70.2"
        assert driver.console_log_path(ref) is None and driver.acceleration() == "vmware"
    finally:
        driver.destroy(ref)


# -- connecting -------------------------------------------------------------------------------

def test_the_registry_opens_the_driver(vcsim):
    with drivers.connect("vsphere", host=vcsim.host, port=vcsim.port, user=vcsim.user,
                         password=vcsim.password, insecure=True, datacenter="DC0",
                         cluster="DC0_C0", datastore="LocalDS_0") as driver:
        assert isinstance(driver, VsphereDriver)
        assert driver.host_system.name == "DC0_C0_H0"  # the cluster's only host
    driver.close()  # twice is fine


def test_bad_credentials_are_a_clear_error(vcsim):
    with pytest.raises(DriverError, match=f"refused the login of '{vcsim.user}'") as info:
        VsphereDriver(vcsim.host, vcsim.user, "wrong", port=vcsim.port, insecure=True)
    assert "password_env" in info.value.hint


def test_an_unreachable_host_is_a_clear_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(InfrastructureError, match=f"cannot reach vSphere at 127.0.0.1:{port}"):
        VsphereDriver("127.0.0.1", "user", "pass", port=port, insecure=True)


def test_an_untrusted_certificate_is_refused_by_default(vcsim):
    with pytest.raises(InfrastructureError, match="not trusted") as info:
        VsphereDriver(vcsim.host, vcsim.user, vcsim.password, port=vcsim.port)
    assert "insecure: true" in info.value.hint


@pytest.mark.parametrize("options, message, existing", [
    ({"datastore": "nope"}, "no datastore named 'nope' on host 'DC0_H0'", "LocalDS_0"),
    ({"datacenter": "DC9"}, "no datacenter named 'DC9'", "DC0"),
    ({"cluster": "C9", "host_system": None}, "no cluster named 'C9'", "DC0_C0"),
    ({"host_system": "H9"}, "no host named 'H9'", "DC0_C0_H0, DC0_H0"),
    ({"host_system": None}, "there are 2 hosts in datacenter 'DC0' to choose from",
     "DC0_C0_H0, DC0_H0"),
    ({"folder": "nope"}, "no VM folder 'nope' in datacenter 'DC0'", "none"),
])
def test_missing_inventory_names_what_exists(vcsim, options, message, existing):
    with pytest.raises(DriverError, match=message) as info:
        open_driver(vcsim, **options)
    assert existing in info.value.message
    assert "profile's hypervisor section" in info.value.hint


def test_a_vm_folder_by_name_or_path(driver, vcsim):
    labs = driver.datacenter.vmFolder.CreateFolder("labs")
    inner = labs.CreateFolder("vmlab-tests")
    try:
        for folder in ("labs/vmlab-tests", "vmlab-tests"):
            with open_driver(vcsim, folder=folder) as placed:
                assert placed.folder == inner
                ref = placed.create(spec())
                try:
                    vm, _ = placed._vm(ref)
                    assert vm.parent == inner
                finally:
                    placed.destroy(ref)
        with pytest.raises(DriverError, match="there are: labs, labs/vmlab-tests"):
            open_driver(vcsim, folder="labs/nope")
    finally:
        wait_task(labs.Destroy_Task(), "removing the test folders")

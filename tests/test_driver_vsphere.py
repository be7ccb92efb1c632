"""The vSphere driver against a real vSphere simulator (govmomi's vcsim, built in set-up by
tests/vsphere_sim/build.sh; see tests/vsphere_fixtures.py). No mocks: every call goes over
HTTPS to the simulator on 127.0.0.1. Snapshots are in test_driver_vsphere_snapshots.py,
connecting in test_driver_vsphere_connect.py."""
from __future__ import annotations

import dataclasses
import ipaddress
import time

import pytest
from pyVmomi import vim

from tests.connection_faults import SoapRelay
from tests.driver_contract import DriverContract
from tests.vsphere_helpers import (MANAGEMENT_MAC, PROVIDER_MAC, SIM_VM, devices, give_addresses,
                                   make_iso, make_untagged, media_files, nics, port_groups, spec,
                                   vswitches)
from vmlab.drivers.base import DiskSpec, KernelBoot, PowerState
from vmlab.drivers.vsphere import VsphereDriver, networks
from vmlab.drivers.vsphere.media import remote_name
from vmlab.drivers.vsphere.session import wait_task
from vmlab.errors import DriverError, InfrastructureError, NotFound, NotOwned, WaitTimeout


# -- the shared driver contract -------------------------------------------------------------

class TestContractOnVcsim(DriverContract):
    @pytest.fixture
    def make_spec(self):
        return spec

    def make_untagged_vm(self, driver, name):
        make_untagged(driver, name)

    def objects_made_for(self, driver, spec):
        """The VM, and the host-only port groups made for its lab with their vSwitches."""
        made = {nic.network.name for nic in spec.nics if nic.network.kind == "isolated"}
        groups = {name for name in port_groups(driver) if name in made}
        switches = {networks.switch_name(name) for name in made} & set(vswitches(driver))
        return groups | switches | ({spec.name} if driver.find(spec.name) else set())

    def ignore_graceful_stop(self, driver, ref):
        """The driver's SOAP calls go through a relay that answers ShutdownGuest itself."""
        relay = SoapRelay(driver.host, driver.port)
        self.relays.append(relay)
        relay.attach(driver)

    def dropped(self, driver):
        """A driver on the simulator through a relay that then goes away."""
        from tests.vsphere_helpers import HOST

        lost = VsphereDriver(driver.host, self.vcsim.user, self.vcsim.password,
                             port=driver.port, insecure=True, host_system=HOST)
        relay = SoapRelay(driver.host, driver.port)
        relay.attach(lost)
        lost.find("vmlab-nothing")  # the session works through the relay
        relay.close()
        lost.si._stub.DropConnections()  # its kept-alive connection goes with the relay
        return lost

    @pytest.fixture(autouse=True)
    def _relays(self, vcsim):
        self.vcsim, self.relays = vcsim, []
        yield
        for relay in self.relays:
            relay.close()


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
    ref = driver.create(spec(cdroms=(iso,), install_once=True))
    try:
        remote, = media_files(driver, ref)
        driver.start_install(ref)  # one definition on vSphere: the VM as it is
        assert driver.state(ref) == PowerState.RUNNING
        assert len(devices(driver, ref, vim.vm.device.VirtualCdrom)) == 1
        driver.stop(ref, hard=True)  # as the installer powers off
        driver.finish_install(ref)
        assert devices(driver, ref, vim.vm.device.VirtualCdrom) == []
        assert driver.files.size(remote) is None
        assert not [o for o in driver.list_owned() if o.kind == "volume" and remote in o.name]
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


# -- lifecycle, networks, ownership -----------------------------------------------------------

def test_graceful_stop_and_a_stale_ref(driver, vm):
    driver.start(vm)
    driver.start(vm)  # already running: nothing to do
    driver.stop(vm)  # ShutdownGuest
    assert driver.state(vm) == PowerState.SHUTOFF
    driver.stop(vm)  # already off: nothing to do
    driver.destroy(vm)
    with pytest.raises(NotFound):
        driver.state(vm)


def test_a_suspended_vm_is_powered_off_by_stop(driver, vm):
    driver.start(vm)
    machine, _ = driver._vm(vm)
    wait_task(machine.SuspendVM_Task(), "suspending")
    assert driver.state(vm) == PowerState.PAUSED
    driver.stop(vm)  # no guest to ask: powered off
    assert driver.state(vm) == PowerState.SHUTOFF


def test_a_fault_of_a_vsphere_call_is_a_driver_error(driver, vm):
    machine, _ = driver._vm(vm)
    machine.MarkAsTemplate()  # vSphere refuses to power on a template
    with pytest.raises(DriverError, match=f"starting VM '{vm.name}' failed: "):
        driver.start(vm)


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
                   lambda: driver.finish_install(ref)):
        with pytest.raises(NotOwned):
            action()
    assert driver.find(SIM_VM) == ref
    assert vm.runtime.powerState == power and vm.snapshot is None
    assert SIM_VM not in [o.name for o in driver.list_owned()]


# -- guest addresses --------------------------------------------------------------------------

def test_guest_addresses_and_the_ssh_endpoint(driver, vm):
    assert driver.interface_addresses(vm) == {PROVIDER_MAC: [], MANAGEMENT_MAC: []}
    with pytest.raises(InfrastructureError, match="no IPv4 address") as info:
        driver.ssh_endpoint(vm)
    assert "open-vm-tools" in info.value.hint
    with pytest.raises(WaitTimeout):
        driver.wait_for_ip(vm, PROVIDER_MAC, timeout=0.5, interval=0.1)
    give_addresses(driver, vm, {PROVIDER_MAC: "10.0.0.50", MANAGEMENT_MAC: "192.168.70.2"})
    driver.start(vm)
    assert driver.interface_addresses(vm) == {PROVIDER_MAC: ["10.0.0.50"],
                                              MANAGEMENT_MAC: ["192.168.70.2"]}
    endpoint = driver.ssh_endpoint(vm, 2222)
    assert (endpoint.host, endpoint.port, endpoint.jump) == ("10.0.0.50", 2222, None)
    assert driver.wait_for_ip(vm, MANAGEMENT_MAC.upper(), timeout=5,
                              within=ipaddress.ip_network("192.168.70.0/24")) == "192.168.70.2"
    assert driver.console_log_path(vm) is None and driver.acceleration() == "vmware"

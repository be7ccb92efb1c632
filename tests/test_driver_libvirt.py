"""The libvirt driver: the contract on the libvirt test driver and on a real libvirtd with
qemu guests, golden domain XML, and a remote (qemu+ssh://) connection."""
from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import libvirt
import pytest

from tests.connection_faults import UnixRelay
from tests.driver_contract import DriverContract
from tests.golden import check_golden
from vmlab.drivers.base import (DiskSpec, KernelBoot, NetworkSpec, NicSpec, PowerState, VMSpec)
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.drivers.libvirt.xml import (BootFiles, Ownership, domain_xml, move_forwards,
                                       network_xml)
from vmlab.errors import NotFound
from vmlab.gc import SKIPPED_IMAGE, SKIPPED_VM, collect, collect_images, find_unused_images

_names = itertools.count()


def user_nics() -> tuple[NicSpec, ...]:
    return (NicSpec("provider", NetworkSpec("user", "p", ipaddress.ip_network("10.0.2.0/24")),
                    "52:54:00:00:10:01", forward_port=22),
            NicSpec("management", NetworkSpec("user", "m",
                                              ipaddress.ip_network("192.168.70.0/24")),
                    "52:54:00:00:10:02"))


def bridged_nics(lab: str) -> tuple[NicSpec, ...]:
    return (NicSpec("provider", NetworkSpec("nat", f"vmlab-{lab}-provider",
                                            ipaddress.ip_network("10.77.0.0/24"),
                                            ipaddress.ip_address("10.77.0.1"), dhcp=True),
                    "52:54:00:00:20:01"),
            NicSpec("management", NetworkSpec("isolated", f"vmlab-{lab}-management",
                                              ipaddress.ip_network("192.168.70.0/24"),
                                              ipaddress.ip_address("192.168.70.1")),
                    "52:54:00:00:20:02"))


def small_spec(prefix: str, nics=None) -> VMSpec:
    lab = f"{prefix}{os.getpid()}-{next(_names)}"
    return VMSpec(name=f"vmlab-{lab}", lab=lab, cpus=1, memory_mib=128,
                  disk=DiskSpec(size_gib=1), nics=nics or user_nics(), accel="tcg")


READ_4K = "read 4096/4096 bytes at offset 0"


def qemu_io(image: str, command: str) -> str:
    """One qemu-io command on a qcow2 image, its output; the test fails on a non-zero exit
    (qemu-io exits 1 when it cannot open the image and when a read's pattern differs)."""
    done = subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, image],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"qemu-io -c {command!r} exited {done.returncode}: " \
                                 f"{done.stdout}{done.stderr}"
    return done.stdout


def daemon_socket() -> str:
    """libvirtd's read-write socket for qemu:///system."""
    for path in ("/run/libvirt/libvirt-sock", "/var/run/libvirt/libvirt-sock"):
        if os.path.exists(path):
            return path
    pytest.fail("libvirtd answers but has no socket under /run/libvirt")


def fake_bzimage(path: Path) -> Path:
    """The smallest file qemu's x86 loader takes for a Linux kernel (boot protocol 2.12
    header: 'HdrS', one setup sector, loaded high, an initrd limit): it boots into nothing,
    which is all a test of which definition runs needs."""
    image = bytearray(8192)
    image[0x1F1] = 1  # setup_sects
    image[0x202:0x206] = b"HdrS"
    image[0x206:0x208] = (0x020C).to_bytes(2, "little")
    image[0x211] = 0x01  # LOADED_HIGH
    image[0x22C:0x230] = (0x37FFFFFF).to_bytes(4, "little")  # initrd_addr_max
    path.write_bytes(bytes(image))
    return path


def define_untagged(driver: LibvirtDriver, name: str) -> None:
    driver.conn.defineXML(f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>64"
                          "</memory><os><type arch='x86_64'>hvm</type></os></domain>")


def libvirt_objects(driver: LibvirtDriver, spec: VMSpec) -> set[str]:
    """What libvirt holds for ``spec``, tagged or not: its domain, the volumes named after
    it in any pool, and the networks named in its NICs (vmlab makes those for the lab)."""
    conn = driver.conn
    found = {d.name() for d in conn.listAllDomains(0) if d.name() == spec.name}
    for pool in conn.listAllStoragePools(0):
        try:
            if pool.isActive():
                pool.refresh(0)
                found |= {v.name() for v in pool.listAllVolumes(0)
                          if v.name().startswith(spec.name)}
        except libvirt.libvirtError:
            continue  # another test's pool, going away as we look
    nic_networks = {nic.network.name for nic in spec.nics if nic.network.kind != "user"}
    return found | {n.name() for n in conn.listAllNetworks(0) if n.name() in nic_networks}


# -- the contract on libvirt's test driver (one node file per test) ---------------------------

class TestContractOnTestDriver(DriverContract):
    @pytest.fixture
    def driver(self, tmp_path):
        node = tmp_path / "node.xml"
        node.write_text("<node></node>\n")
        with LibvirtDriver(f"test://{node}") as driver:
            yield driver

    @pytest.fixture
    def make_spec(self):
        # Bridged networks are fine here: the test driver makes no host bridge.
        return lambda: small_spec("td", nics=bridged_nics(f"td{next(_names)}"))

    def make_untagged_vm(self, driver, name):
        define_untagged(driver, name)

    def objects_made_for(self, driver, spec):
        return libvirt_objects(driver, spec)

    #: libvirt's test driver shuts a domain off the moment it is asked, so no stop can run
    #: past its deadline here: not collected (the qemu and vcsim suites prove it).
    test_a_graceful_stop_past_its_deadline_raises_and_leaves_the_vm_running = None

    def dropped(self, driver):
        lost = LibvirtDriver(driver.uri)
        lost.conn.close()  # in-process: the test driver has no daemon to lose
        return lost

    def test_networks_made_for_a_lab_go_with_it(self, driver, make_spec):
        spec = make_spec()
        ref = driver.create(spec)
        names = {n.name() for n in driver.conn.listAllNetworks()}
        assert {nic.network.name for nic in spec.nics} <= names
        management = driver.conn.networkLookupByName(spec.nics[1].network.name).XMLDesc(0)
        assert "<forward" not in management and "<dhcp" not in management
        driver.destroy(ref)
        assert not {nic.network.name for nic in spec.nics} & {
            n.name() for n in driver.conn.listAllNetworks()}


# -- the contract on the real libvirtd, with qemu guests -------------------------------------

@pytest.mark.e2e
class TestContractOnQemu(DriverContract):
    @pytest.fixture
    def driver(self, libvirtd):
        with LibvirtDriver(libvirtd) as driver:
            yield driver
            for name in driver.conn.listDefinedDomains() + [
                    d.name() for d in driver.conn.listAllDomains(0)]:
                if name.startswith(f"vmlab-qemu{os.getpid()}-"):
                    subprocess.run(["virsh", "undefine", name, "--snapshots-metadata"],
                                   capture_output=True)

    @pytest.fixture
    def make_spec(self):
        return lambda: small_spec("qemu")  # user NICs only: no host bridge on this machine

    def make_untagged_vm(self, driver, name):
        define_untagged(driver, name)

    def objects_made_for(self, driver, spec):
        return libvirt_objects(driver, spec)

    def ignore_graceful_stop(self, driver, ref):
        """Nothing to do: the test VM has no OS, and SeaBIOS ignores the ACPI button."""

    def dropped(self, driver):
        """A driver talking to libvirtd through a relay, which then drops the connection
        (as a libvirtd that died would)."""
        relay = UnixRelay(self.relay_dir / "libvirt-sock", daemon_socket())
        lost = LibvirtDriver(f"qemu+unix:///system?socket={relay.path}")
        lost.find("vmlab-nothing")  # the connection works through the relay
        relay.drop()
        return lost

    @pytest.fixture(autouse=True)
    def _relay_dir(self, tmp_path):
        self.relay_dir = tmp_path

    def test_snapshot_really_reverts_disk_content(self, driver, make_spec):
        """Write a marker onto the qcow2 disk through qemu-io, snapshot, overwrite, revert."""
        spec = make_spec()
        ref = driver.create(spec)
        try:
            path = driver.conn.storagePoolLookupByName("vmlab").storageVolLookupByName(
                f"{spec.name}-disk.qcow2").path()
            qemu_io(path, "write -P 0x41 0 4k")
            driver.snapshot_create(ref, "written")
            qemu_io(path, "write -P 0x42 0 4k")
            assert READ_4K in qemu_io(path, "read -P 0x42 0 4k")  # the overwrite landed
            driver.snapshot_revert(ref, "written")
            assert READ_4K in qemu_io(path, "read -P 0x41 0 4k")
        finally:
            driver.destroy(ref)

    def test_live_snapshot_keeps_the_vm_running(self, driver, make_spec):
        ref = driver.create(make_spec())
        try:
            driver.start(ref)
            snap = driver.snapshot_create(ref, "live", live=True)
            assert snap.state == PowerState.RUNNING
            assert driver.state(ref) == PowerState.RUNNING
            driver.snapshot_revert(ref, "live")
            assert driver.state(ref) == PowerState.RUNNING
        finally:
            driver.destroy(ref)

    def test_the_install_boot_runs_once_and_the_vm_then_boots_its_own_definition(
            self, driver, make_spec, tmp_path):
        kernel, initrd = fake_bzimage(tmp_path / "vmlinuz"), tmp_path / "initrd"
        initrd.write_bytes(b"\0" * 4096)
        spec = dataclasses.replace(make_spec(), boot=KernelBoot(kernel, initrd, "console=ttyS0"),
                                   install_once=True)
        ref = driver.create(spec)
        try:
            domain = driver.conn.lookupByName(ref.name)
            inactive = libvirt.VIR_DOMAIN_XML_INACTIVE
            assert "<kernel>" not in domain.XMLDesc(inactive)  # defined as it stays
            driver.start_install(ref)
            assert "<cmdline>console=ttyS0</cmdline>" in domain.XMLDesc(0)  # this run only
            assert "<kernel>" not in domain.XMLDesc(inactive)
            driver.stop(ref, hard=True)  # as an installer powers off
            driver.finish_install(ref)
            driver.start(ref)
            assert "<kernel>" not in domain.XMLDesc(0)  # from its disk now
            assert driver.find(ref.name).lab == spec.lab
        finally:
            driver.destroy(ref)

    def test_acceleration_is_detected_from_the_host(self, driver):
        flags = Path("/proc/cpuinfo").read_text()
        hardware = " vmx" in flags or " svm" in flags
        assert driver.acceleration() == ("kvm" if hardware and os.path.exists("/dev/kvm")
                                         else "tcg")


# -- uploaded guest images that nothing uses any more ----------------------------------------

@pytest.fixture
def private_pool(libvirtd, tmp_path):
    """A driver whose pool is the test's own (on the real libvirtd), removed afterwards."""
    name = f"vmlab-gc{os.getpid()}"
    with LibvirtDriver(libvirtd, pool=name, pool_path=str(tmp_path / "pool")) as driver:
        yield driver
        for owned in driver.list_owned():
            ref = driver.find(owned.name) if owned.kind == "vm" else None
            if ref is not None and ref.lab.startswith(f"gc{os.getpid()}-"):
                driver.destroy(ref)
        pool = driver.conn.storagePoolLookupByName(name)
        for volume in pool.listAllVolumes(0):
            volume.delete(0)
        pool.destroy()
        pool.undefine()


def base_names(driver: LibvirtDriver) -> list[str]:
    pool = driver.conn.storagePoolLookupByName(driver.pool_name)
    return sorted(v.name() for v in pool.listAllVolumes(0) if v.name().startswith("vmlab-base-"))


@pytest.mark.e2e
def test_an_uploaded_image_no_disk_is_built_on_is_found_and_deleted(private_pool, tmp_path):
    driver = private_pool
    old_image, new_image = tmp_path / "old.qcow2", tmp_path / "new.qcow2"
    for image in (old_image, new_image):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
    old_base, new_base = "vmlab-base-a1a1a1a1a1a1a1a1.qcow2", "vmlab-base-b2b2b2b2b2b2b2b2.qcow2"
    # a lab of an earlier image recipe, destroyed; a lab of the current one, still there
    driver.destroy(driver.create(dataclasses.replace(
        small_spec("gc"), disk=DiskSpec(1, image=old_image, image_key="a1" * 8))))
    current = driver.create(dataclasses.replace(
        small_spec("gc"), disk=DiskSpec(1, image=new_image, image_key="b2" * 8)))
    assert base_names(driver) == [old_base, new_base]

    assert driver.unused_images(timedelta(hours=1)) == []  # just uploaded: a create may need it
    unused = driver.unused_images(timedelta(0))
    assert [image.name for image in unused] == [old_base]
    assert abs(unused[0].created.timestamp() - time.time()) < 300
    with pytest.raises(NotFound):
        driver.delete_image(new_base)  # a disk is built on it
    driver.delete_image(old_base)
    assert base_names(driver) == [new_base]

    driver.destroy(current)
    new_path = driver.conn.storagePoolLookupByName(driver.pool_name).storageVolLookupByName(
        new_base).path()
    by_hand = f"vmlab-gc-by-hand-{os.getpid()}"  # a VM someone made on the base itself
    driver.conn.defineXML(
        f"<domain type='qemu'><name>{by_hand}</name><memory unit='MiB'>64</memory>"
        "<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'>"
        f"<driver name='qemu' type='qcow2'/><source file='{new_path}'/><target dev='vda'/>"
        "</disk></devices></domain>")
    try:
        assert driver.unused_images(timedelta(0)) == []
    finally:
        driver.conn.lookupByName(by_hand).undefine()
    assert [image.name for image in driver.unused_images(timedelta(0))] == [new_base]


@pytest.mark.e2e
def test_gc_images_lists_then_deletes_an_image_no_disk_is_built_on(private_pool, vmlab,
                                                                   tmp_path):
    driver = private_pool
    image = tmp_path / "old.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
    driver.destroy(driver.create(dataclasses.replace(
        small_spec("gc"), disk=DiskSpec(1, image=image, image_key="c3" * 8))))
    profile = tmp_path / "gc.yaml"
    profile.write_text(f"extends: demo\nname: gc-images\nhypervisor:\n  kind: libvirt\n"
                       f"  pool: {driver.pool_name}\n")
    gc = ("gc", "--images", "--profile", str(profile))

    assert vmlab(*gc).stdout == "nothing to collect\n"  # uploaded less than an hour ago
    dry = vmlab.json(*gc, "--images-older-than", "0m")
    assert dry["deleted"] is False and dry["garbage"] == []
    assert [(row["image"], row["reason"]) for row in dry["images"]] == [
        ("vmlab-base-c3c3c3c3c3c3c3c3.qcow2", "no disk is built on it")]
    assert base_names(driver) == ["vmlab-base-c3c3c3c3c3c3c3c3.qcow2"]
    done = vmlab(*gc, "--images-older-than", "0m", "--yes").stdout
    assert done.startswith("deleted image vmlab-base-c3c3c3c3c3c3c3c3.qcow2 (no disk is built")
    assert base_names(driver) == []


@pytest.mark.e2e
def test_an_image_built_on_after_gc_listed_it_is_skipped_not_an_error(private_pool,
                                                                     tmp_path):
    driver = private_pool
    image = tmp_path / "old.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "1G"], check=True)
    spec = dataclasses.replace(small_spec("gc"), disk=DiskSpec(1, image=image,
                                                               image_key="d4" * 8))
    driver.destroy(driver.create(spec))
    rows = find_unused_images(driver, timedelta(0))
    assert [row["image"] for row in rows] == ["vmlab-base-d4d4d4d4d4d4d4d4.qcow2"]

    driver.create(dataclasses.replace(small_spec("gc"), disk=spec.disk))  # a create races gc
    assert collect_images(driver, rows) == []
    assert rows[0]["skipped"] == SKIPPED_IMAGE
    assert base_names(driver) == ["vmlab-base-d4d4d4d4d4d4d4d4.qcow2"]


@pytest.mark.e2e
def test_a_vm_that_changed_after_gc_listed_it_is_skipped_not_destroyed(private_pool):
    driver = private_pool
    ref = driver.create(small_spec("gc"))
    other_labs = [{"vm": ref.name, "lab": "another-lab"}]  # the name is now another lab's VM
    assert collect(driver, other_labs) == []
    assert other_labs[0]["skipped"] == SKIPPED_VM
    assert driver.find(ref.name) is not None

    gone = [{"vm": ref.name, "lab": ref.lab}]
    driver.destroy(ref)
    assert collect(driver, gone) == []
    assert gone[0]["skipped"] == SKIPPED_VM


# -- golden XML ----------------------------------------------------------------------------

def golden(name: str, text: str) -> None:
    check_golden(f"libvirt/{name}", text)


def owner(lab: str) -> Ownership:
    return Ownership(lab=lab, created="2026-01-01T00:00:00+00:00", volumes=["v1"],
                     forwards={22: 40022}, serial_log=f"/var/log/libvirt/qemu/vmlab-{lab}.log",
                     provider_mac="52:54:00:00:10:01")


def test_direct_kernel_boot_domain_matches_golden_and_libvirt_accepts_it(tmp_path):
    spec = VMSpec(name="vmlab-golden", lab="golden", cpus=2, memory_mib=1024,
                  disk=DiskSpec(4), nics=user_nics(),
                  boot=KernelBoot(Path("k"), Path("i"), "root=LABEL=vmlab-root console=ttyS0"),
                  guest_data=(("hostname", "controller"), ("network", "52:54:00:00:10:02 "
                                                                    "192.168.70.2/24\n")))
    boot = BootFiles("/pool/vmlab-golden-vmlinuz", "/pool/vmlab-golden-initrd",
                     spec.boot.cmdline)
    xml = domain_xml(spec, domain_type="qemu", pool="vmlab", disk_volume="vmlab-golden-disk.qcow2",
                     cdrom_volumes=[], boot=boot, owner=owner("golden"))
    golden("user-nics.xml", xml)
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in xml and "restrict=on" in xml
    node = tmp_path / "node.xml"
    node.write_text("<node></node>\n")
    conn = libvirt.open(f"test://{node}")
    try:
        conn.defineXML(xml)
        assert conn.lookupByName("vmlab-golden").metadata(
            libvirt.VIR_DOMAIN_METADATA_ELEMENT, "https://vmlab.dev/xmlns/lab/1")
    finally:
        conn.close()


def test_bridged_domain_and_networks_match_golden(tmp_path):
    spec = VMSpec(name="vmlab-bridged", lab="bridged", cpus=1, memory_mib=512,
                  disk=DiskSpec(4), nics=bridged_nics("bridged"))
    xml = domain_xml(spec, domain_type="kvm", pool="vmlab", disk_volume="d.qcow2",
                     cdrom_volumes=["vmlab-bridged-cdrom0.iso"], boot=None,
                     owner=owner("bridged"))
    golden("bridged.xml", xml)
    nat = network_xml("n", "nat", ipaddress.ip_network("10.77.0.0/24"),
                      ipaddress.ip_address("10.77.0.1"), True)
    isolated = network_xml("i", "isolated", ipaddress.ip_network("192.168.70.0/24"),
                           ipaddress.ip_address("192.168.70.1"), False)
    golden("network-nat.xml", nat)
    golden("network-isolated.xml", isolated)
    node = tmp_path / "node.xml"
    node.write_text("<node></node>\n")
    conn = libvirt.open(f"test://{node}")
    try:
        for network in (nat, isolated):
            conn.networkDefineXML(network)
        conn.defineXML(xml)
    finally:
        conn.close()


def test_moving_forwarded_ports_rewrites_only_the_hostfwd_options_named():
    argument = ("user,id=vmlabnet0,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:40022-:22,"
                "hostfwd=tcp:127.0.0.1:40080-:80")
    assert move_forwards(argument, {40022: 41022}) == (
        "user,id=vmlabnet0,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:41022-:22,"
        "hostfwd=tcp:127.0.0.1:40080-:80")
    assert move_forwards("virtio-net-pci,netdev=vmlabnet0", {40022: 1}) == \
        "virtio-net-pci,netdev=vmlabnet0"

"""The libvirt driver: qemu/KVM domains with internal qcow2 snapshots.

Every domain vmlab creates carries a ``<metadata>`` element naming its lab and listing the
volumes and networks made for it; a domain without it is never started, stopped,
snapshotted or destroyed.
"""
from __future__ import annotations

import random
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from pathlib import Path

import libvirt

from vmlab.drivers.base import (Check, Driver, KernelBoot, NetworkSpec, OwnedObject, PowerState,
                                ProgressFn, VMRef, VMSpec, _quiet)
from vmlab.drivers.libvirt import networks, storage
from vmlab.drivers.libvirt.connection import message as _message
from vmlab.drivers.libvirt.networks import NetworkOperations
from vmlab.drivers.libvirt.reader import LibvirtReader
from vmlab.drivers.libvirt.snapshots import SnapshotOperations
from vmlab.drivers.libvirt.xml import (VMLAB_NS, BootFiles, Ownership, domain_xml,
                                       network_xml)
from vmlab.errors import DriverError, NotFound

GIB = 1 << 30
PORT_RETRIES = 5
SERIAL_LOG_DIR = "/var/log/libvirt/qemu"


class LibvirtDriver(NetworkOperations, SnapshotOperations, LibvirtReader, Driver):
    kind = "libvirt"

    def __init__(self, uri: str = "qemu:///system", pool: str = "vmlab",
                 pool_path: str | None = None) -> None:
        super().__init__(uri, pool, pool_path)
        self._accel: str | None = None

    def _set_owner(self, domain: libvirt.virDomain, owner: Ownership) -> None:
        domain.setMetadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, owner.to_xml(), "vmlab",
                           VMLAB_NS, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    # -- acceleration ----------------------------------------------------------------------
    def acceleration(self) -> str:
        """'kvm' only when libvirt offers it AND the host CPU has hardware virtualisation.

        A software-emulated KVM (a nested "PVM" host without vmx/svm) is advertised by
        libvirt but fails in a Linux guest's early boot with an emulation error.
        """
        if self._accel is None:
            caps = ET.fromstring(self.conn.getCapabilities())
            offers_kvm = any(domain.get("type") == "kvm"
                             for arch in caps.findall("./guest/arch")
                             if arch.get("name") == "x86_64"
                             for domain in arch.findall("domain"))
            features = {f.get("name") for f in caps.findall("./host/cpu/feature")}
            self._accel = "kvm" if offers_kvm and features & {"vmx", "svm"} else "tcg"
        return self._accel

    def _domain_type(self, spec: VMSpec) -> str:
        accel = self.acceleration() if spec.accel == "auto" else spec.accel
        return "kvm" if accel == "kvm" else "qemu"

    # -- create ---------------------------------------------------------------------------
    def create(self, spec: VMSpec, progress: ProgressFn = _quiet) -> VMRef:
        if self._lookup(spec.name) is not None:
            raise DriverError(f"a VM named {spec.name!r} already exists on {self.uri}")
        made_volumes: list[libvirt.virStorageVol] = []
        made_networks: list[str] = []
        try:
            made_networks += self.ensure_networks(spec.nics)
            pool = storage.ensure_pool(self.conn, self.pool_name, self.pool_path)
            owner = Ownership(lab=spec.lab, created=datetime.now(timezone.utc).isoformat(
                timespec="seconds"), serial_log=f"{SERIAL_LOG_DIR}/{spec.name}-serial.log",
                home=spec.home, ssh_address=spec.ssh_address or "",
                networks=list(dict.fromkeys(spec.networks_made + tuple(made_networks))))
            base = None
            if spec.disk.image is not None:
                base = storage.ensure_base_volume(self.conn, pool, spec.disk.image,
                                                  spec.disk.image_key or spec.name, progress)
            disk = storage.create_volume(self.conn, pool, f"{spec.name}-disk.qcow2",
                                         spec.disk.size_gib * GIB, "qcow2", backing=base)
            made_volumes.append(disk)
            boot = None
            if spec.boot is not None:
                kernel = storage.create_volume(
                    self.conn, pool, f"{spec.name}-vmlinuz", spec.boot.kernel.stat().st_size,
                    "raw", source=spec.boot.kernel, progress=progress)
                made_volumes.append(kernel)
                initrd = storage.create_volume(
                    self.conn, pool, f"{spec.name}-initrd", spec.boot.initrd.stat().st_size,
                    "raw", source=spec.boot.initrd, progress=progress)
                made_volumes.append(initrd)
                boot = BootFiles(kernel.path(), initrd.path(), spec.boot.cmdline)
            cdroms = []
            for index, iso in enumerate(spec.cdroms):
                if not Path(iso).is_file():
                    raise DriverError(f"CD-ROM image {iso} does not exist")
                volume = storage.create_volume(
                    self.conn, pool, f"{spec.name}-cdrom{index}.iso", Path(iso).stat().st_size,
                    "raw", source=Path(iso), progress=progress)
                made_volumes.append(volume)
                cdroms.append(volume.name())
            for nic in spec.nics:
                if nic.role == "provider":
                    owner.provider_mac = nic.mac
                if nic.network.kind in networks.BRIDGED:
                    continue  # made or found by ensure_networks above
                if nic.forward_port is not None:
                    owner.forwards[nic.forward_port] = self._pick_port()
            owner.volumes = [v.name() for v in made_volumes]
            xml = domain_xml(spec, domain_type=self._domain_type(spec), pool=self.pool_name,
                             disk_volume=disk.name(), cdrom_volumes=cdroms, boot=boot,
                             owner=owner)
            domain = self._call(f"defining VM {spec.name}", self.conn.defineXML, xml)
            return self._ref(domain)
        except BaseException:
            for volume in reversed(made_volumes):
                storage.delete_volume(volume)
            self.remove_networks(made_networks)
            raise

    def preflight(self, spec: VMSpec, media_bytes: int = 0) -> list[Check]:
        from vmlab.drivers.libvirt import preflight

        return preflight.checks(self, spec, media_bytes)

    def _ensure_network(self, spec: NetworkSpec) -> libvirt.virNetwork | None:
        """Define and start the network if missing; return it only when made here."""
        try:
            self.conn.networkLookupByName(spec.name)
            return None
        except libvirt.libvirtError:
            pass
        xml = network_xml(spec.name, spec.kind, spec.subnet, spec.host_address, spec.dhcp)
        network = self._call(f"defining network {spec.name}", self.conn.networkDefineXML, xml)
        try:
            network.create()
            network.setAutostart(1)
        except libvirt.libvirtError as exc:
            self._remove_network(network)
            raise DriverError(f"starting network {spec.name} failed: {_message(exc)}") from exc
        return network

    @staticmethod
    def _remove_network(network: libvirt.virNetwork) -> None:
        try:
            if network.isActive():
                network.destroy()
            network.undefine()
        except libvirt.libvirtError:
            pass

    def _pick_port(self) -> int:
        """A free port on the hypervisor host's 127.0.0.1 for a user NIC's forward."""
        if self.remote_host is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                return sock.getsockname()[1]
        return random.randint(20000, 60000)  # checked when the domain starts

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, ref: VMRef) -> None:
        domain = self._domain(ref)
        if domain.isActive():
            return
        for attempt in range(PORT_RETRIES):
            try:
                domain.create()
                return
            except libvirt.libvirtError as exc:
                message = _message(exc)
                if "host forwarding" not in message or attempt == PORT_RETRIES - 1:
                    raise DriverError(f"starting VM {ref.name} failed: {message}",
                                      hint="read the VM's log under /var/log/libvirt/qemu/") \
                        from exc
                domain = self._move_forwards(domain)

    def _move_forwards(self, domain: libvirt.virDomain) -> libvirt.virDomain:
        """The forwarded port was taken: pick others and redefine the domain."""
        owner = self._owner(domain)
        assert owner is not None
        xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        for guest, old in list(owner.forwards.items()):
            new = self._pick_port()
            xml = xml.replace(f"hostfwd=tcp:127.0.0.1:{old}-:{guest}",
                              f"hostfwd=tcp:127.0.0.1:{new}-:{guest}")
            owner.forwards[guest] = new
        domain = self.conn.defineXML(xml)
        self._set_owner(domain, owner)
        return domain

    def set_kernel_boot(self, ref: VMRef, boot: KernelBoot | None) -> None:
        """After an install boot: boot from disk, without the installer's CD-ROMs."""
        domain = self._domain(ref)
        if domain.isActive():
            raise DriverError(f"VM {ref.name} must be shut off to change how it boots")
        root = ET.fromstring(domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        os_element = root.find("os")
        assert os_element is not None
        for tag in ("kernel", "initrd", "cmdline"):
            for element in os_element.findall(tag):
                os_element.remove(element)
        if boot is None:
            devices = root.find("devices")
            assert devices is not None
            for disk in devices.findall("disk"):
                if disk.get("device") == "cdrom":
                    devices.remove(disk)
        else:
            kernel_volume, initrd_volume = self._boot_volumes(ref, boot)
            for index, (tag, text) in enumerate((("kernel", kernel_volume),
                                                 ("initrd", initrd_volume),
                                                 ("cmdline", boot.cmdline))):
                element = ET.Element(tag)
                element.text = text
                os_element.insert(1 + index, element)
        self._call(f"redefining VM {ref.name}", self.conn.defineXML,
                   ET.tostring(root, encoding="unicode"))

    def _boot_volumes(self, ref: VMRef, boot: KernelBoot) -> tuple[str, str]:
        pool = storage.ensure_pool(self.conn, self.pool_name, self.pool_path)
        paths = []
        for suffix in ("vmlinuz", "initrd"):
            volume = storage.find_volume(pool, f"{ref.name}-{suffix}")
            if volume is None:
                raise NotFound(f"VM {ref.name} has no {suffix} volume to boot from")
            paths.append(volume.path())
        return paths[0], paths[1]

    def stop(self, ref: VMRef, hard: bool = False, timeout: float = 120.0) -> None:
        domain = self._domain(ref)
        if not domain.isActive():
            return
        if hard:
            self._call(f"stopping VM {ref.name}", domain.destroy)
            return
        self._call(f"shutting down VM {ref.name}", domain.shutdown)
        self.wait_for_state(ref, PowerState.SHUTOFF, timeout)

    def destroy(self, ref: VMRef) -> None:
        domain = self._domain(ref)
        owner = self._owner(domain)
        assert owner is not None
        if domain.isActive():
            self._call(f"stopping VM {ref.name}", domain.destroy)
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)  # vmlab domains have no NVRAM
        self._call(f"removing VM {ref.name}", domain.undefineFlags, flags)
        if self.remote_host is None and owner.serial_log:
            _remove_console_log(Path(owner.serial_log))
        pool = storage.ensure_pool(self.conn, self.pool_name, self.pool_path)
        for name in owner.volumes:
            volume = storage.find_volume(pool, name)
            if volume is not None:
                storage.delete_volume(volume)
        for name in owner.networks:
            if not self._network_in_use(name):
                try:
                    self._remove_network(self.conn.networkLookupByName(name))
                except libvirt.libvirtError:
                    pass

    def _network_in_use(self, name: str) -> bool:
        for domain in self.conn.listAllDomains(0):
            root = ET.fromstring(domain.XMLDesc(0))
            if any(s.get("network") == name for s in root.findall("./devices/interface/source")):
                return True
        return False

    def list_owned(self) -> list[OwnedObject]:
        owned: list[OwnedObject] = []
        for domain in self.conn.listAllDomains(0):
            owner = self._owner(domain)
            if owner is None:
                continue
            created = datetime.fromisoformat(owner.created) if owner.created else None
            home = owner.home
            owned.append(OwnedObject("vm", domain.name(), owner.lab, created, home))
            owned += [OwnedObject("volume", v, owner.lab, created, home) for v in owner.volumes]
            owned += [OwnedObject("network", n, owner.lab, created, home)
                      for n in owner.networks]
        return owned

    def unused_images(self, min_age: timedelta) -> list[OwnedObject]:
        pool = self._existing_pool()
        if pool is None:
            return []
        return [OwnedObject("volume", volume.name(), lab="",
                            created=datetime.fromtimestamp(uploaded, timezone.utc))
                for volume, uploaded in storage.unused_base_volumes(
                    self.conn, pool, min_age.total_seconds())]

    def delete_image(self, name: str) -> None:
        pool = self._existing_pool()
        unused = storage.unused_base_volumes(self.conn, pool, 0) if pool is not None else []
        volume = next((v for v, _ in unused if v.name() == name), None)
        if volume is None:  # gone, or a lab has been built on it since it was listed
            raise NotFound(f"no unused base image {name!r} in pool {self.pool_name!r}")
        self._call(f"deleting base image {name}", volume.delete, 0)

    def _existing_pool(self) -> libvirt.virStoragePool | None:
        """The driver's pool if it exists (garbage collection does not make one)."""
        try:
            pool = self.conn.storagePoolLookupByName(self.pool_name)
        except libvirt.libvirtError:
            return None
        return pool if pool.isActive() else None


def _remove_console_log(log: Path) -> None:
    """The serial console log (and virtlogd's rotations of it): it may hold what a stage
    printed, secrets included, so it goes with the VM. On a remote host it stays."""
    for path in (log, *log.parent.glob(f"{log.name}.*")):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


__all__ = ["LibvirtDriver"]

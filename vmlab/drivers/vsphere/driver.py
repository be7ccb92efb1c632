"""The vSphere driver (vCenter or a standalone ESXi host) through pyVmomi.

Ownership: extraConfig ``vmlab.lab`` (and the keys in ``ownership``) plus a note in the
annotation; a VM without it is only ever found and listed, never changed. Networks: see
``networks`` (vSphere has no NAT: ``nat``/``user`` NICs use an existing port group; an
``isolated`` one is a host-only port group made when missing and owned by the VM). CD-ROM
images are uploaded to the datastore (see ``media``) and removed with the last VM using them.

vSphere cannot boot a kernel directly: installs boot from CD-ROMs (the install ISO plus an
OEMDRV ISO holding the kickstart), which ``finish_install`` removes afterwards.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyVim.connect import Disconnect
from pyVmomi import vim, vmodl

from vmlab.drivers.base import (Check, Driver, Endpoint, OwnedObject, PowerState,
                                ProgressFn, Snapshot, Undo, VMRef, VMSpec, _quiet)
from vmlab.drivers.vsphere import inventory, networks
from vmlab.drivers.vsphere.kind import KIND
from vmlab.drivers.vsphere.media import DatastoreFiles, remote_name
from vmlab.drivers.vsphere.ownership import (GUESTINFO, Owner, annotation, extra_config,
                                             vmware_mac)
from vmlab.drivers.vsphere.session import connect, retrieve, translated, wait_task
from vmlab.errors import (DriverError, InfrastructureError, NotFound, UsageError,
                          VmlabError)

__all__ = ["VsphereDriver"]

GUEST_IDS = {"centos7": "centos7_64Guest"}
DEFAULT_GUEST_ID = "otherLinux64Guest"
_POWER = {"poweredOn": PowerState.RUNNING, "poweredOff": PowerState.SHUTOFF,
          "suspended": PowerState.PAUSED}
_OFF, _ON = "poweredOff", "poweredOn"


@dataclass
class _Made:
    """What a create() made so far: removed again when it fails."""

    networks: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    task: Any = None
    vm: Any = None


class VsphereDriver(Driver):
    kind = "vsphere"
    capabilities = KIND.capabilities

    def __init__(self, host: str, user: str, password: str | None = None, port: int = 443,
                 insecure: bool = False, datacenter: str | None = None,
                 cluster: str | None = None, host_system: str | None = None,
                 datastore: str | None = None, folder: str | None = None) -> None:
        self.host, self.port, self.insecure = host, port, insecure
        self.si = connect(host, port, user, password, insecure)
        self.content = self.si.content
        try:
            placement = self._resolve(datacenter, cluster, host_system, datastore, folder)
        except BaseException:
            self.close()
            raise
        self.datacenter = placement.datacenter
        self.host_system = placement.host
        self.pool = placement.pool
        self.datastore = placement.datastore
        self.folder = placement.folder
        self.files = DatastoreFiles(self.si, host, port, insecure, self.datacenter,
                                    self.datastore)

    @translated("finding where VMs go")
    def _resolve(self, *names: str | None) -> inventory.Placement:
        return inventory.resolve(self.si, *names)

    # -- finding VMs ----------------------------------------------------------------------
    def _lookup(self, name: str) -> vim.VirtualMachine | None:
        for vm, props in retrieve(self.si, self.datacenter, vim.VirtualMachine, ["name"]):
            if props.get("name") == name:
                return vm
        return None

    def _vm(self, ref: VMRef) -> tuple[vim.VirtualMachine, Owner]:
        """The VM of ``ref`` and its ownership tag; NotOwned without one."""
        return self._owned(ref)

    def _tagged(self, ref: VMRef) -> tuple[vim.VirtualMachine, Owner | None]:
        vm = None
        if ref.uuid:
            found = self.content.searchIndex.FindByUuid(datacenter=self.datacenter,
                                                        uuid=ref.uuid, vmSearch=True)
            if found is not None and found.name == ref.name:
                vm = found
        vm = vm or self._lookup(ref.name)
        if vm is None:
            raise NotFound(f"VM {ref.name!r} does not exist in datacenter "
                           f"{self.datacenter.name!r}",
                           hint="it was removed outside vmlab, or the profile names another "
                                "vSphere or datacenter")
        return vm, Owner.read(extra_config(vm.config.extraConfig if vm.config else None))

    def _ref(self, vm: vim.VirtualMachine) -> VMRef:
        config = vm.config
        owner = Owner.read(extra_config(config.extraConfig if config else None))
        return VMRef(self.kind, vm.name, config.uuid if config else "",
                     owner.lab if owner else None)

    def _owners(self) -> list[tuple[str, Owner]]:
        """(name, tag) of every tagged VM of the datacenter, in one round trip."""
        rows = retrieve(self.si, self.datacenter, vim.VirtualMachine,
                        ["name", "config.extraConfig"])
        found = []
        for _, props in rows:
            owner = Owner.read(extra_config(props.get("config.extraConfig")))
            if owner is not None:
                found.append((props.get("name", ""), owner))
        return found

    # -- create -----------------------------------------------------------------------------
    def describe(self) -> str:
        return f"datacenter {self.datacenter.name!r}"

    @translated("creating VM")
    def create(self, spec: VMSpec, progress: ProgressFn = _quiet) -> VMRef:
        return super().create(spec, progress)

    def _create(self, spec: VMSpec, progress: ProgressFn, undo: Undo) -> VMRef:
        made = _Made()
        undo.push(lambda: self._undo(made))
        owner = Owner(lab=spec.lab, home=spec.home, created=datetime.now(timezone.utc))
        add = vim.vm.device.VirtualDeviceSpec.Operation.add
        controller = vim.vm.device.ParaVirtualSCSIController(
            key=1000, busNumber=0, sharedBus=vim.vm.device.VirtualSCSIController.Sharing.noSharing)
        disk = vim.vm.device.VirtualDisk(
            key=2000, controllerKey=1000, unitNumber=0, capacityInKB=spec.disk.size_gib << 20,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                diskMode="persistent", thinProvisioned=True, fileName=""))
        changes = [vim.vm.device.VirtualDeviceSpec(operation=add, device=controller),
                   vim.vm.device.VirtualDeviceSpec(
                       operation=add, device=disk,
                       fileOperation=vim.vm.device.VirtualDeviceSpec.FileOperation.create)]
        extra = [vim.option.OptionValue(key=f"{GUESTINFO}{name}", value=value)
                 for name, value in spec.guest_data]
        inherited: set[str] | None = None
        for index, nic in enumerate(spec.nics):
            if nic.network.kind == "isolated":
                name = nic.network.name
                network, new = networks.ensure_isolated(self.datacenter, self.host_system, name)
                if new:
                    made.networks.append(name)
                elif inherited is None:  # another lab VM's port group: shared ownership
                    inherited = {n for _, o in self._owners() for n in o.networks}
                if (new or name in (inherited or ())) and name not in owner.networks:
                    owner.networks.append(name)
            else:
                network = networks.find(self.datacenter, self.host_system, nic.network)
            if nic.role == "provider":
                owner.provider_mac = nic.mac.lower()
            if not vmware_mac(nic.mac):  # vSphere refuses static MACs outside its range
                extra.append(vim.option.OptionValue(key=f"ethernet{index}.checkMACAddress",
                                                    value="FALSE"))
            card = vim.vm.device.VirtualVmxnet3(
                key=4000 + index, addressType="manual", macAddress=nic.mac.lower(),
                backing=networks.backing(network),
                connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                    startConnected=True, connected=True, allowGuestControl=True))
            changes.append(vim.vm.device.VirtualDeviceSpec(operation=add, device=card))
        for index, iso in enumerate(spec.cdroms):
            remote = self._upload(Path(iso), progress, made)
            path = self.files.path(remote)
            if path not in owner.media:
                owner.media.append(path)
            cdrom = vim.vm.device.VirtualCdrom(
                key=3000 + index, controllerKey=200 + index // 2, unitNumber=index % 2,
                backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(fileName=path),
                connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True))
            changes.append(vim.vm.device.VirtualDeviceSpec(operation=add, device=cdrom))
        config = vim.vm.ConfigSpec(
            name=spec.name, guestId=GUEST_IDS.get(spec.guest_os, DEFAULT_GUEST_ID),
            numCPUs=spec.cpus, memoryMB=spec.memory_mib, annotation=annotation(owner),
            files=vim.vm.FileInfo(vmPathName=f"[{self.datastore.name}]"),
            extraConfig=owner.options() + extra, deviceChange=changes)
        made.task = self.folder.CreateVM_Task(config=config, pool=self.pool,
                                              host=self.host_system)
        made.vm = wait_task(made.task, f"creating VM {spec.name!r}")
        return self._ref(made.vm)

    def _upload(self, local: Path, progress: ProgressFn, made: _Made) -> str:
        """Put a CD-ROM image on the datastore unless the same file is there already."""
        progress(f"checking {local.name}")
        remote = remote_name(local)
        if self.files.size(remote) == local.stat().st_size:
            progress(f"{local.name} is already on datastore {self.datastore.name}")
            return remote
        made.media.append(self.files.path(remote))  # even half-uploaded, it goes on failure
        self.files.upload(local, remote, progress)
        return remote

    def _undo(self, made: _Made) -> None:
        """Remove what a failed create() made; errors here must not hide the first one."""
        vm = made.vm
        if vm is None and made.task is not None:
            try:  # interrupted while vSphere was making it: it may still appear
                vm = wait_task(made.task, "creating the VM", timeout=60)
            except Exception:  # noqa: BLE001 - cleaning up after another error
                vm = None
        if vm is not None:
            try:
                wait_task(vm.Destroy_Task(), "removing the half-made VM")
            except Exception:  # noqa: BLE001
                pass
        try:
            self._release(made.networks, made.media, self.host_system)
        except Exception:  # noqa: BLE001 - e.g. the connection is gone: keep the first error
            pass

    def _release(self, owned_networks: list[str], media: list[str],
                 host: vim.HostSystem) -> list[str]:
        """Remove port groups and files no VM uses any more; what could not be removed."""
        left = []
        still_used = {path for _, owner in self._owners() for path in owner.media}
        for path in media:
            if path not in still_used:
                try:
                    self.files.delete(path)
                except (VmlabError, vmodl.MethodFault, OSError) as exc:
                    left.append(f"file {path} ({exc})")
        for name in owned_networks:
            try:
                if not networks.in_use(self.si, self.datacenter, host, name):
                    networks.remove(host, name)
            except (VmlabError, vmodl.MethodFault, OSError) as exc:
                left.append(f"port group {name} ({exc})")
        return left

    @translated("finishing the install of VM")
    def finish_install(self, ref: VMRef) -> None:
        """vSphere keeps one definition per VM: it boots the install from CD-ROMs (the
        install ISO and the OEMDRV one), which are removed here, with their files once no
        VM uses them."""
        vm, owner = self._vm(ref)
        remove = vim.vm.device.VirtualDeviceSpec.Operation.remove
        changes = [vim.vm.device.VirtualDeviceSpec(operation=remove, device=device)
                   for device in vm.config.hardware.device
                   if isinstance(device, vim.vm.device.VirtualCdrom)]
        media, owner.media = owner.media, []
        spec = vim.vm.ConfigSpec(deviceChange=changes, extraConfig=owner.options())
        wait_task(vm.ReconfigVM_Task(spec=spec), f"removing the CD-ROMs of {ref.name!r}")
        self._release([], media, vm.runtime.host)

    # -- lifecycle --------------------------------------------------------------------------
    @translated("starting VM")
    def start(self, ref: VMRef) -> None:
        vm, _ = self._vm(ref)
        if vm.runtime.powerState != _ON:
            wait_task(vm.PowerOnVM_Task(), f"powering on {ref.name!r}")

    @translated("stopping VM")
    def stop(self, ref: VMRef, hard: bool = False, timeout: float = 120.0) -> None:
        """Graceful: ShutdownGuest, which needs VMware tools in the guest; as the contract
        says, a guest still running at the deadline is left running (WaitTimeout), and one
        without tools is refused: powering it off is the caller's call (``hard``). A
        suspended VM has no guest to ask and is powered off."""
        vm, _ = self._vm(ref)
        if vm.runtime.powerState == _OFF:
            return
        if hard or vm.runtime.powerState != _ON:
            wait_task(vm.PowerOffVM_Task(), f"powering off {ref.name!r}")
            return
        try:
            vm.ShutdownGuest()
        except vim.fault.ToolsUnavailable as exc:
            raise DriverError(f"VM {ref.name!r} cannot be asked to shut down: VMware tools "
                              "are not running in it",
                              hint="install open-vm-tools in the guest, or stop it hard "
                                   "(powering it off)") from exc
        self.wait_for_state(ref, PowerState.SHUTOFF, timeout)

    @translated("reading the power state of VM")
    def state(self, ref: VMRef) -> PowerState:
        vm, _ = self._vm(ref)
        return _POWER.get(vm.runtime.powerState, PowerState.OTHER)

    @translated("looking for VM")
    def find(self, name: str) -> VMRef | None:
        vm = self._lookup(name)
        return self._ref(vm) if vm is not None else None

    @translated("removing VM")
    def destroy(self, ref: VMRef) -> None:
        vm, owner = self._vm(ref)
        host = vm.runtime.host
        if vm.runtime.powerState != _OFF:
            wait_task(vm.PowerOffVM_Task(), f"powering off {ref.name!r}")
        wait_task(vm.Destroy_Task(), f"removing VM {ref.name!r}")
        left = self._release(owner.networks, owner.media, host)
        if left:
            raise DriverError(f"VM {ref.name!r} is removed, but not: {'; '.join(left)}",
                              hint="remove them in the vSphere client")

    @translated("listing vmlab's VMs")
    def list_owned(self) -> list[OwnedObject]:
        owned: list[OwnedObject] = []
        seen: set[tuple[str, str, str]] = set()
        for name, owner in self._owners():
            created = owner.created
            owned.append(OwnedObject("vm", name, owner.lab, created, owner.home))
            for kind, names in (("network", owner.networks), ("volume", owner.media)):
                for item in names:
                    if (kind, item, owner.lab) not in seen:
                        seen.add((kind, item, owner.lab))
                        owned.append(OwnedObject(kind, item, owner.lab, created, owner.home))
        return owned

    # -- snapshots -------------------------------------------------------------------------------
    @staticmethod
    def _tree(vm: vim.VirtualMachine) -> list[tuple[Any, str | None]]:
        """Every snapshot node with its parent's name: the whole tree, parents first."""
        found: list[tuple[Any, str | None]] = []

        def walk(nodes: Any, parent: str | None) -> None:
            for node in nodes or []:
                found.append((node, parent))
                walk(node.childSnapshotList, node.name)

        info = vm.snapshot
        walk(info.rootSnapshotList if info else [], None)
        return found

    def _node(self, vm: vim.VirtualMachine, name: str) -> Any:
        matches = [node for node, _ in self._tree(vm) if node.name == name]
        if not matches:
            raise NotFound(f"VM {vm.name!r} has no snapshot {name!r}",
                           hint="`vmlab snapshots` lists them")
        if len(matches) > 1:
            raise UsageError(f"VM {vm.name!r} has {len(matches)} snapshots named {name!r}",
                             hint="someone made them outside vmlab: rename or delete the extra "
                                  "ones in the vSphere client")
        return matches[0]

    @translated("taking a snapshot of VM")
    def snapshot_create(self, ref: VMRef, name: str, description: str = "",
                        live: bool = False) -> Snapshot:
        return super().snapshot_create(ref, name, description, live)

    def _snapshot_create(self, ref: VMRef, name: str, description: str, live: bool) -> None:
        """live: with the guest's memory (the VM resumes running on revert)."""
        vm, _ = self._vm(ref)
        wait_task(vm.CreateSnapshot_Task(name=name, description=description, memory=live,
                                         quiesce=False), f"taking snapshot {name!r}")

    @translated("listing the snapshots of VM")
    def snapshot_list(self, ref: VMRef) -> list[Snapshot]:
        vm, _ = self._vm(ref)
        info = vm.snapshot
        current = info.currentSnapshot if info else None
        return [Snapshot(name=node.name, parent=parent,
                         created=node.createTime.astimezone(timezone.utc),
                         state=_POWER.get(node.state, PowerState.OTHER),
                         description=node.description or "",
                         current=current is not None and node.snapshot == current)
                for node, parent in self._tree(vm)]

    @translated("reverting VM")
    def snapshot_revert(self, ref: VMRef, name: str) -> None:
        """Revert; then power the VM on or off to match the snapshot's recorded state."""
        vm, _ = self._vm(ref)
        node = self._node(vm, name)
        wait_task(node.snapshot.RevertToSnapshot_Task(), f"reverting to {name!r}")
        power = vm.runtime.powerState
        if node.state == _OFF and power != _OFF:
            wait_task(vm.PowerOffVM_Task(), f"powering off {ref.name!r}")
        elif node.state == _ON and power != _ON:
            wait_task(vm.PowerOnVM_Task(), f"powering on {ref.name!r}")

    @translated("deleting a snapshot of VM")
    def snapshot_delete(self, ref: VMRef, name: str, children: bool = False) -> None:
        vm, _ = self._vm(ref)
        node = self._node(vm, name)
        wait_task(node.snapshot.RemoveSnapshot_Task(removeChildren=children, consolidate=True),
                  f"deleting snapshot {name!r}")

    # -- guest access ------------------------------------------------------------------------------
    @translated("reading the addresses of VM")
    def interface_addresses(self, ref: VMRef) -> dict[str, list[str]]:
        """From guest.net, which VMware tools in the guest fill in."""
        vm, _ = self._vm(ref)
        return self._addresses(vm)

    @staticmethod
    def _addresses(vm: vim.VirtualMachine) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        guest = vm.guest
        for nic in (guest.net if guest else None) or []:
            if nic.macAddress:
                found.setdefault(nic.macAddress.lower(), []).extend(
                    a for a in nic.ipAddress or [] if ":" not in a)
        return found

    @translated("finding the SSH address of VM")
    def ssh_endpoint(self, ref: VMRef, port: int = 22) -> Endpoint:
        """The provider NIC's address as the guest reports it (any NIC's without one)."""
        vm, owner = self._vm(ref)
        found = self._addresses(vm)
        candidates = found.get(owner.provider_mac, []) or [a for v in found.values() for a in v]
        if not candidates:
            raise InfrastructureError(f"VM {ref.name!r} reports no IPv4 address yet",
                                      hint="vSphere learns it from VMware tools: are "
                                           "open-vm-tools running in the guest?")
        return Endpoint(candidates[0], port)

    def console_log_path(self, ref: VMRef) -> str | None:
        return None

    @translated("checking what creating a VM needs")
    def preflight(self, spec: VMSpec, media_bytes: int = 0) -> list[Check]:
        from vmlab.drivers.vsphere import preflight

        return preflight.checks(self, spec, media_bytes)

    def acceleration(self) -> str:
        return "vmware"

    def close(self) -> None:
        si, self.si = getattr(self, "si", None), None
        if si is not None:
            try:
                Disconnect(si)
            except (OSError, vmodl.MethodFault):
                pass

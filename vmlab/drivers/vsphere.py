"""The vSphere driver (vCenter or a standalone ESXi host) through pyVmomi.

Ownership is the extraConfig key ``vmlab.lab`` (plus a note in the annotation); the port
groups a lab made are listed in ``vmlab.networks``. vSphere has no NAT of its own: the
provider network is an existing port group, the management network a port group on a
standard vSwitch without uplinks (host-only), made when missing.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import time
from datetime import timezone
from pathlib import Path
from urllib.parse import quote

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from vmlab.drivers.base import (Driver, Endpoint, KernelBoot, NetworkSpec, OwnedObject, PowerState,
                                ProgressFn, Snapshot, VMRef, VMSpec, _quiet)
from vmlab.errors import (DriverError, InfrastructureError, NotFound, NotOwned, SnapshotExists,
                          UsageError, WaitTimeout)

TASK_TIMEOUT = 600.0
OWNER_KEY = "vmlab.lab"
NETWORKS_KEY = "vmlab.networks"
HOME_KEY = "vmlab.home"
GUEST_IDS = {"centos7": "centos7_64Guest"}
_POWER = {"poweredOn": PowerState.RUNNING, "poweredOff": PowerState.SHUTOFF,
          "suspended": PowerState.PAUSED}


def _fault_text(fault: object) -> str:
    message = getattr(fault, "msg", None) or getattr(fault, "localizedMessage", None)
    return message or type(fault).__name__


def _names(objects) -> str:
    return ", ".join(sorted(o.name for o in objects)) or "none"


class VsphereDriver(Driver):
    kind = "vsphere"

    def __init__(self, host: str, user: str, password: str | None, port: int = 443,
                 insecure: bool = False, datacenter: str | None = None,
                 cluster: str | None = None, host_system: str | None = None,
                 datastore: str | None = None, folder: str | None = None) -> None:
        self.host, self.port, self.insecure = host, port, insecure
        try:
            context = (ssl._create_unverified_context() if insecure  # noqa: S323 - asked for
                       else ssl.create_default_context())
            self.si = SmartConnect(host=host, port=port, user=user, pwd=password or "",
                                   sslContext=context, connectionPoolTimeout=30)
        except vim.fault.InvalidLogin as exc:
            raise DriverError(f"vSphere at {host}:{port} refused the login of {user!r}",
                              hint="check the user and the password in the environment "
                                   "variable the profile names (password_env)") from exc
        except ssl.SSLError as exc:
            raise InfrastructureError(f"the TLS certificate of {host}:{port} is not trusted: "
                                      f"{exc}", hint="install its CA, or set `insecure: true` "
                                                     "in the profile's hypervisor section") \
                from exc
        except (OSError, http.client.HTTPException) as exc:
            raise InfrastructureError(f"cannot reach vSphere at {host}:{port}: {exc}",
                                      hint="check the host name, the port and the network") \
                from exc
        content = self.si.RetrieveContent()
        self.content = content
        self.datacenter = self._pick(content.rootFolder.childEntity, datacenter, "datacenter",
                                     vim.Datacenter)
        compute = self._all(vim.ComputeResource)
        if cluster:
            self.compute = self._pick(compute, cluster, "cluster", vim.ClusterComputeResource)
            self.host_system = self._pick(self.compute.host, host_system, "host", vim.HostSystem)
        else:
            hosts = self._all(vim.HostSystem)
            self.host_system = self._pick(hosts, host_system, "host", vim.HostSystem)
            self.compute = self.host_system.parent
        self.pool = self.compute.resourcePool
        self.datastore = self._pick(self.host_system.datastore, datastore, "datastore",
                                    vim.Datastore)
        self.folder = self.datacenter.vmFolder
        if folder:
            self.folder = self._pick(self._all(vim.Folder), folder, "folder", vim.Folder)

    # -- inventory --------------------------------------------------------------------------
    def _all(self, kind: type) -> list:
        view = self.content.viewManager.CreateContainerView(self.datacenter, [kind], True)
        try:
            return list(view.view)
        finally:
            view.Destroy()

    @staticmethod
    def _pick(objects, name: str | None, what: str, kind: type):
        candidates = [o for o in objects if isinstance(o, kind)]
        if name is None:
            if candidates:
                return candidates[0]
            raise DriverError(f"vSphere has no {what}", hint=f"create a {what} first")
        for candidate in candidates:
            if candidate.name == name:
                return candidate
        raise DriverError(f"no {what} named {name!r} in vSphere",
                          hint=f"existing: {_names(candidates)}")

    def _vm(self, ref: VMRef, owned: bool = True) -> vim.VirtualMachine:
        for vm in self._all(vim.VirtualMachine):
            if vm.name == ref.name:
                if owned and self._owner(vm) is None:
                    raise NotOwned(f"VM {ref.name!r} carries no vmlab ownership tag: not "
                                   "touching it", hint="vmlab only acts on VMs it created")
                return vm
        raise NotFound(f"VM {ref.name!r} does not exist in vSphere")

    @staticmethod
    def _extra(vm: vim.VirtualMachine, key: str) -> str | None:
        config = vm.config
        for option in (config.extraConfig if config else []) or []:
            if option.key == key:
                return str(option.value)
        return None

    def _owner(self, vm: vim.VirtualMachine) -> str | None:
        return self._extra(vm, OWNER_KEY)

    def _ref(self, vm: vim.VirtualMachine) -> VMRef:
        return VMRef(self.kind, vm.name, vm.config.uuid if vm.config else "", self._owner(vm))

    def _wait(self, task: vim.Task, what: str, timeout: float = TASK_TIMEOUT):
        deadline = time.monotonic() + timeout
        while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
            if time.monotonic() > deadline:
                raise WaitTimeout(f"{what} did not finish within {timeout:.0f}s")
            time.sleep(0.2)
        if task.info.state == vim.TaskInfo.State.error:
            raise DriverError(f"{what} failed: {_fault_text(task.info.error)}")
        return task.info.result

    # -- networks ---------------------------------------------------------------------------
    def _network(self, spec: NetworkSpec, made: list[str]) -> vim.Network:
        existing = self._networks()
        if spec.name in existing:
            return existing[spec.name]
        if spec.kind != "isolated":
            raise DriverError(f"no port group named {spec.name!r} for the provider network "
                              "(vSphere has no NAT of its own: name an existing port group)",
                              hint=f"existing: {', '.join(sorted(existing)) or 'none'}")
        system = self.host_system.configManager.networkSystem
        try:
            system.AddVirtualSwitch(vswitchName=spec.name,
                                    spec=vim.host.VirtualSwitch.Specification(numPorts=128))
            system.AddPortGroup(portgrp=vim.host.PortGroup.Specification(
                name=spec.name, vlanId=0, vswitchName=spec.name,
                policy=vim.host.NetworkPolicy()))
        except vmodl.MethodFault as exc:
            raise DriverError(f"creating port group {spec.name!r} failed: {_fault_text(exc)}") \
                from exc
        made.append(spec.name)
        network = self._networks().get(spec.name)
        if network is not None:
            return network
        raise DriverError(f"port group {spec.name!r} was created but is not visible")

    def _networks(self) -> dict[str, vim.Network]:
        """Networks by name: the host's and the datacenter's (where new port groups appear)."""
        found = {n.name: n for n in self.datacenter.network}
        found.update({n.name: n for n in self.host_system.network})
        return found

    def _remove_port_group(self, name: str) -> None:
        system = self.host_system.configManager.networkSystem
        for call in (lambda: system.RemovePortGroup(pgName=name),
                     lambda: system.RemoveVirtualSwitch(vswitchName=name)):
            try:
                call()
            except vmodl.MethodFault:
                pass

    # -- datastore files ------------------------------------------------------------------------
    def _upload(self, local: Path, remote: str, progress: ProgressFn) -> None:
        """PUT a file to the datastore over HTTPS, unless the same size is already there."""
        size = local.stat().st_size
        path = (f"/folder/{quote(remote)}?dcPath={quote(self.datacenter.name)}"
                f"&dsName={quote(self.datastore.name)}")
        context = ssl._create_unverified_context() if self.insecure \
            else ssl.create_default_context()
        cookie = self.si._stub.cookie
        connection = http.client.HTTPSConnection(self.host, self.port, context=context,
                                                 timeout=60)
        try:
            connection.request("HEAD", path, headers={"Cookie": cookie})
            response = connection.getresponse()
            response.read()
            if response.status == 200 and int(response.getheader("Content-Length") or -1) == size:
                progress(f"{local.name} is already on the datastore")
                return
            connection.putrequest("PUT", path)
            connection.putheader("Cookie", cookie)
            connection.putheader("Content-Length", str(size))
            connection.putheader("Content-Type", "application/octet-stream")
            connection.endheaders()
            sent, reported = 0, -10
            with local.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    connection.send(block)
                    sent += len(block)
                    if sent * 100 // max(size, 1) >= reported + 10:
                        reported = sent * 100 // max(size, 1)
                        progress(f"uploading {local.name}: {reported}%")
            response = connection.getresponse()
            response.read()
            if response.status not in (200, 201, 204):
                raise DriverError(f"uploading {local.name} to the datastore failed: HTTP "
                                  f"{response.status}")
        except (OSError, http.client.HTTPException) as exc:
            raise InfrastructureError(f"uploading {local.name} to the datastore failed: {exc}") \
                from exc
        finally:
            connection.close()

    # -- create -------------------------------------------------------------------------------
    def create(self, spec: VMSpec, progress: ProgressFn = _quiet) -> VMRef:
        for iso in spec.cdroms:
            if not Path(iso).is_file():
                raise DriverError(f"CD-ROM image {iso} does not exist")
        if any(vm.name == spec.name for vm in self._all(vim.VirtualMachine)):
            raise DriverError(f"a VM named {spec.name!r} already exists in vSphere")
        made_networks: list[str] = []
        vm = None
        try:
            devices = self._devices(spec, made_networks, progress)
            extra = [vim.option.OptionValue(key=OWNER_KEY, value=spec.lab),
                     vim.option.OptionValue(key=HOME_KEY, value=spec.home),
                     vim.option.OptionValue(key=NETWORKS_KEY, value=" ".join(made_networks))]
            extra += [vim.option.OptionValue(key=f"guestinfo.vmlab.{name}", value=value)
                      for name, value in spec.guest_data]
            config = vim.vm.ConfigSpec(
                name=spec.name, guestId=GUEST_IDS.get(spec.guest_os, "otherLinux64Guest"),
                numCPUs=spec.cpus, memoryMB=spec.memory_mib,
                files=vim.vm.FileInfo(vmPathName=f"[{self.datastore.name}]"),
                annotation=f"Created by vmlab for lab {spec.lab}; vmlab owns it.",
                extraConfig=extra, deviceChange=devices)
            task = self.folder.CreateVM_Task(config=config, pool=self.pool, host=self.host_system)
            vm = self._wait(task, f"creating VM {spec.name}")
            return self._ref(vm)
        except BaseException:
            if vm is not None:
                try:
                    self._wait(vm.Destroy_Task(), f"removing VM {spec.name}")
                except DriverError:
                    pass
            for name in made_networks:
                self._remove_port_group(name)
            raise

    def _devices(self, spec: VMSpec, made_networks: list[str], progress: ProgressFn) -> list:
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
        for index, nic in enumerate(spec.nics):
            network = self._network(nic.network, made_networks)
            card = vim.vm.device.VirtualVmxnet3(
                key=4000 + index, addressType="manual", macAddress=nic.mac,
                backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                    deviceName=network.name, network=network),
                connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True,
                                                                    allowGuestControl=True))
            changes.append(vim.vm.device.VirtualDeviceSpec(operation=add, device=card))
        for index, iso in enumerate(spec.cdroms):
            remote = f"{spec.name}/{Path(iso).name}"
            self._upload(Path(iso), remote, progress)
            cdrom = vim.vm.device.VirtualCdrom(
                key=3000 + index, controllerKey=200 + index // 2, unitNumber=index % 2,
                backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(
                    fileName=f"[{self.datastore.name}] {remote}"),
                connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True))
            changes.append(vim.vm.device.VirtualDeviceSpec(operation=add, device=cdrom))
        return changes

    def set_kernel_boot(self, ref: VMRef, boot: KernelBoot | None) -> None:
        """vSphere boots from its CD-ROMs to install: after the install, remove them."""
        if boot is not None:
            super().set_kernel_boot(ref, boot)
        vm = self._vm(ref)
        remove = vim.vm.device.VirtualDeviceSpec.Operation.remove
        changes = [vim.vm.device.VirtualDeviceSpec(operation=remove, device=device)
                   for device in vm.config.hardware.device
                   if isinstance(device, vim.vm.device.VirtualCdrom)]
        if changes:
            self._wait(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)),
                       f"removing the install CD-ROMs of {ref.name}")

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, ref: VMRef) -> None:
        vm = self._vm(ref)
        if vm.runtime.powerState != "poweredOn":
            self._wait(vm.PowerOnVM_Task(), f"powering on {ref.name}")

    def stop(self, ref: VMRef, hard: bool = False, timeout: float = 120.0) -> None:
        """Graceful: ShutdownGuest (needs VMware tools); powered off hard at the deadline."""
        vm = self._vm(ref)
        if vm.runtime.powerState == "poweredOff":
            return
        if not hard:
            try:
                vm.ShutdownGuest()
                self.wait_for_state(ref, PowerState.SHUTOFF, timeout)
                return
            except (vmodl.MethodFault, WaitTimeout):
                pass
        if vm.runtime.powerState != "poweredOff":
            self._wait(vm.PowerOffVM_Task(), f"powering off {ref.name}")

    def state(self, ref: VMRef) -> PowerState:
        return _POWER.get(self._vm(ref, owned=False).runtime.powerState, PowerState.OTHER)

    def find(self, name: str) -> VMRef | None:
        for vm in self._all(vim.VirtualMachine):
            if vm.name == name:
                return self._ref(vm)
        return None

    def destroy(self, ref: VMRef) -> None:
        vm = self._vm(ref)
        networks = (self._extra(vm, NETWORKS_KEY) or "").split()
        if vm.runtime.powerState != "poweredOff":
            self._wait(vm.PowerOffVM_Task(), f"powering off {ref.name}")
        self._wait(vm.Destroy_Task(), f"removing VM {ref.name}")
        for name in networks:
            network = self._networks().get(name)
            users = network.vm if network is not None else []
            if not users:
                self._remove_port_group(name)

    def list_owned(self) -> list[OwnedObject]:
        owned = []
        for vm in self._all(vim.VirtualMachine):
            lab = self._owner(vm)
            if lab is None:
                continue
            created = vm.config.createDate if vm.config else None
            home = self._extra(vm, HOME_KEY) or ""
            owned.append(OwnedObject("vm", vm.name, lab, created, home))
            owned += [OwnedObject("network", n, lab, created, home)
                      for n in (self._extra(vm, NETWORKS_KEY) or "").split()]
        return owned

    # -- snapshots ---------------------------------------------------------------------------------
    def _tree(self, vm: vim.VirtualMachine) -> list[tuple[object, str | None]]:
        """Every snapshot node with its parent's name, walking the whole tree."""
        found: list[tuple[object, str | None]] = []

        def walk(nodes, parent: str | None) -> None:
            for node in nodes or []:
                found.append((node, parent))
                walk(node.childSnapshotList, node.name)

        walk(vm.snapshot.rootSnapshotList if vm.snapshot else [], None)
        return found

    def _node(self, vm: vim.VirtualMachine, name: str):
        matches = [node for node, _ in self._tree(vm) if node.name == name]
        if not matches:
            raise NotFound(f"VM {vm.name!r} has no snapshot {name!r}")
        if len(matches) > 1:
            raise UsageError(f"VM {vm.name!r} has {len(matches)} snapshots named {name!r}",
                             hint="rename or delete the extra ones in vSphere")
        return matches[0]

    def snapshot_create(self, ref: VMRef, name: str, description: str = "",
                        live: bool = False) -> Snapshot:
        vm = self._vm(ref)
        if any(node.name == name for node, _ in self._tree(vm)):
            raise SnapshotExists(f"VM {ref.name!r} already has a snapshot named {name!r}",
                                 hint="snapshot names are unique per VM")
        self._wait(vm.CreateSnapshot_Task(name=name, description=description, memory=live,
                                          quiesce=False), f"taking snapshot {name!r}")
        return next(s for s in self.snapshot_list(ref) if s.name == name)

    def snapshot_list(self, ref: VMRef) -> list[Snapshot]:
        vm = self._vm(ref)
        current = vm.snapshot.currentSnapshot if vm.snapshot else None
        return [Snapshot(name=node.name, parent=parent,
                         created=node.createTime.astimezone(timezone.utc),
                         state=_POWER.get(node.state, PowerState.OTHER),
                         description=node.description or "",
                         current=current is not None and node.snapshot == current)
                for node, parent in self._tree(vm)]

    def snapshot_revert(self, ref: VMRef, name: str) -> None:
        vm = self._vm(ref)
        node = self._node(vm, name)
        self._wait(node.snapshot.RevertToSnapshot_Task(), f"reverting to {name!r}")
        if node.state == "poweredOff" and vm.runtime.powerState != "poweredOff":
            self._wait(vm.PowerOffVM_Task(), f"powering off {ref.name}")

    def snapshot_delete(self, ref: VMRef, name: str, children: bool = False) -> None:
        vm = self._vm(ref)
        node = self._node(vm, name)
        self._wait(node.snapshot.RemoveSnapshot_Task(removeChildren=children),
                   f"deleting snapshot {name!r}")

    # -- guest access ---------------------------------------------------------------------------------
    def interface_addresses(self, ref: VMRef) -> dict[str, list[str]]:
        vm = self._vm(ref)
        found: dict[str, list[str]] = {}
        for nic in (vm.guest.net if vm.guest else []) or []:
            addresses = [a for a in nic.ipAddress or [] if ":" not in a]
            if nic.macAddress:
                found.setdefault(nic.macAddress.lower(), []).extend(addresses)
        return found

    def ssh_endpoint(self, ref: VMRef, port: int = 22) -> Endpoint:
        for addresses in self.interface_addresses(ref).values():
            if addresses:
                return Endpoint(addresses[0], port)
        raise InfrastructureError(f"VM {ref.name!r} reports no IP address yet",
                                  hint="are VMware tools (open-vm-tools) running in the guest?")

    def console_log_path(self, ref: VMRef) -> str | None:
        return None

    def acceleration(self) -> str:
        return "vmware"

    def close(self) -> None:
        try:
            Disconnect(self.si)
        except (OSError, vmodl.MethodFault, socket.error):
            pass

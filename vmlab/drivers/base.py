"""The driver contract: value objects and the abstract Driver every hypervisor implements.

Hypervisor objects (a libvirt virDomain, a pyVmomi vim.VirtualMachine) never leave a
driver: callers hold a VMRef and pass it back. Every object a driver creates carries an
ownership tag naming the lab; a driver refuses to touch anything without it.
"""
from __future__ import annotations

import abc
import ipaddress
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Literal

from vmlab.drivers.refs import Endpoint, Glance, PowerState, Snapshot, VMRef  # noqa: F401
from vmlab.errors import DriverError, WaitTimeout

NicRole = Literal["provider", "management"]
NetworkKind = Literal["nat", "isolated", "user"]
Accel = Literal["auto", "kvm", "tcg"]
CheckStatus = Literal["ok", "warn", "fail"]

#: Called by long operations with a short human sentence ("uploading disk 40%").
ProgressFn = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True)
class NetworkSpec:
    """A network a NIC attaches to.

    kind ``user``: a user-mode NIC private to the VM (no host bridge); ``subnet`` is the
    guest-side subnet. ``nat``/``isolated``: a hypervisor network named ``name``, created
    and owned by vmlab when missing (``subnet`` and ``host_address`` describe it; DHCP only
    for ``nat``). ``existing``: on vSphere, the port group to use as it is.
    """

    kind: NetworkKind
    name: str
    subnet: ipaddress.IPv4Network
    host_address: ipaddress.IPv4Address | None = None
    dhcp: bool = False


@dataclass(frozen=True)
class NicSpec:
    role: NicRole
    network: NetworkSpec
    mac: str
    #: Guest TCP port to forward to a free host port on 127.0.0.1 (user networks only).
    forward_port: int | None = None


@dataclass(frozen=True)
class KernelBoot:
    """Direct kernel boot: local files, uploaded to the hypervisor by the driver."""

    kernel: Path
    initrd: Path
    cmdline: str


@dataclass(frozen=True)
class DiskSpec:
    size_gib: int
    #: A local qcow2 image to base the disk on (uploaded by the driver); None = blank disk.
    image: Path | None = None
    #: Cache key of ``image``: equal keys mean equal content, so an upload can be reused.
    image_key: str | None = None


@dataclass(frozen=True)
class VMSpec:
    name: str
    lab: str
    cpus: int
    memory_mib: int
    disk: DiskSpec
    nics: tuple[NicSpec, ...]
    boot: KernelBoot | None = None
    #: Local ISO files attached as CD-ROMs, in order.
    cdroms: tuple[Path, ...] = ()
    #: Small named strings handed to the guest at boot (libvirt: fw_cfg
    #: ``opt/vmlab/<name>``; vSphere: ``guestinfo.vmlab.<name>``). Visible to anyone who
    #: can list processes on the hypervisor host (qemu arguments): never put a secret here.
    guest_data: tuple[tuple[str, str], ...] = ()
    accel: Accel = "auto"
    guest_os: str = "linux"
    #: The vmlab home (state dir) whose lab this is; part of the ownership tag.
    home: str = ""
    #: Networks made for this VM before it was defined (``Driver.ensure_networks``): the VM
    #: owns them, so they go when it is destroyed.
    networks_made: tuple[str, ...] = ()
    #: A static address of the guest on a hypervisor network (the management NIC's, as the
    #: manual's host reaches the controller): SSH goes there. None: to a forwarded port, or
    #: the provider NIC's DHCP lease (found by its MAC).
    ssh_address: str | None = None


@dataclass(frozen=True)
class Check:
    """One preflight finding: what was looked at, how it stands, and what to do about it."""

    area: str  # e.g. "hypervisor", "network", "storage", "memory"
    name: str
    status: CheckStatus
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class HostLink:
    """The host's end of a hypervisor network on the machine vmlab runs on: its interface
    (None until the network exists) and the firewalld zone that interface is put in."""

    interface: str | None
    zone: str | None


@dataclass(frozen=True)
class OwnedObject:
    """Something vmlab made on a hypervisor: for `destroy` and garbage collection."""

    kind: Literal["vm", "volume", "network"]
    name: str
    lab: str
    created: datetime | None = None
    home: str = ""


class Driver(abc.ABC):
    """One hypervisor connection. Use as a context manager or call close()."""

    kind: str = "abstract"

    # -- lifecycle -------------------------------------------------------------
    @abc.abstractmethod
    def create(self, spec: VMSpec, progress: ProgressFn = _quiet) -> VMRef:
        """Create (not start) the VM and whatever it needs; on failure remove all of it."""

    def ensure_networks(self, nics: tuple[NicSpec, ...]) -> list[str]:
        """Make and start the hypervisor networks ``nics`` need that do not exist yet, and
        return the names of those made now. Called before the VM is defined, so that a
        service on the host (the install server) can listen on a network's address; pass
        the names to ``create`` as ``VMSpec.networks_made`` and, if the create does not
        happen, to ``remove_networks``. A driver whose networks give the host no address
        makes them in ``create`` and returns nothing here."""
        return []

    def remove_networks(self, names: list[str]) -> None:
        """Remove networks ``ensure_networks`` made, unless a VM uses them by now."""
        return None

    def network_host_link(self, network: NetworkSpec) -> HostLink | None:
        """Where ``network`` meets the machine vmlab runs on, for the firewall check;
        None when it does not (a remote hypervisor, a user-mode NIC, vSphere)."""
        return None

    def preflight(self, spec: VMSpec, media_bytes: int = 0) -> list[Check]:
        """What creating ``spec`` needs from the hypervisor, checked without changing
        anything: acceleration, networks, room for the disk and ``media_bytes`` of uploaded
        media, memory and CPUs."""
        return []

    @abc.abstractmethod
    def start(self, ref: VMRef) -> None: ...

    @abc.abstractmethod
    def stop(self, ref: VMRef, hard: bool = False, timeout: float = 120.0) -> None:
        """Stop the VM: graceful (ACPI) unless hard; raise WaitTimeout past timeout."""

    @abc.abstractmethod
    def destroy(self, ref: VMRef) -> None:
        """Remove the VM, its snapshots, its disks and the networks it owns."""

    @abc.abstractmethod
    def state(self, ref: VMRef) -> PowerState: ...

    @abc.abstractmethod
    def find(self, name: str) -> VMRef | None:
        """The VM of that name, tagged or not (``ref.lab`` is None when untagged)."""

    @abc.abstractmethod
    def list_owned(self) -> list[OwnedObject]:
        """Every object carrying a vmlab ownership tag on this hypervisor."""

    def unused_images(self, min_age: timedelta) -> list[OwnedObject]:
        """Shared guest images that no VM is built on any more, older than ``min_age``.
        A driver that removes shared media with their last VM (vSphere) has none."""
        return []

    def delete_image(self, name: str) -> None:
        """Delete one of ``unused_images``; NotFound if it is gone or in use again."""
        raise NotImplementedError(f"{type(self).__name__} keeps no shared images")

    # -- snapshots ---------------------------------------------------------------
    @abc.abstractmethod
    def snapshot_create(self, ref: VMRef, name: str, description: str = "",
                        live: bool = False) -> Snapshot:
        """Take a snapshot; refuse a duplicate name (SnapshotExists)."""

    @abc.abstractmethod
    def snapshot_list(self, ref: VMRef) -> list[Snapshot]:
        """All snapshots of the VM, the whole tree, parents before children."""

    @abc.abstractmethod
    def snapshot_revert(self, ref: VMRef, name: str) -> None:
        """Revert; the VM is left in the snapshot's power state."""

    @abc.abstractmethod
    def snapshot_delete(self, ref: VMRef, name: str, children: bool = False) -> None: ...

    # -- guest access ------------------------------------------------------------
    @abc.abstractmethod
    def interface_addresses(self, ref: VMRef) -> dict[str, list[str]]:
        """IPv4 addresses by lower-case MAC, as far as the hypervisor can tell."""

    @abc.abstractmethod
    def ssh_endpoint(self, ref: VMRef, port: int = 22) -> Endpoint:
        """How to reach the guest's TCP ``port`` (forwarded port or an address)."""

    @abc.abstractmethod
    def console_log_path(self, ref: VMRef) -> str | None:
        """The serial console log file on the hypervisor host, if there is one."""

    def glance(self, name: str, ssh_port: int = 22) -> Glance | None:
        """The VM ``name`` as `vmlab status` shows it (None: there is no such VM): its power
        state, snapshots (refused, NotOwned, for a VM without vmlab's tag), console log and,
        when it runs, its SSH endpoint. A driver may answer in fewer calls."""
        ref = self.find(name)
        if ref is None:
            return None
        power = self.state(ref)
        snapshots = tuple(self.snapshot_list(ref))
        console_log = self.console_log_path(ref)
        endpoint = self.ssh_endpoint(ref, ssh_port) if power == PowerState.RUNNING else None
        return Glance(ref, power, snapshots, console_log, endpoint)

    @abc.abstractmethod
    def acceleration(self) -> str:
        """What VMs created now would run with, e.g. 'kvm' or 'tcg'."""

    def set_kernel_boot(self, ref: VMRef, boot: KernelBoot | None) -> None:
        """Switch between direct kernel boot and booting from disk (after an install)."""
        raise DriverError(f"the {self.kind} driver cannot change how a VM boots",
                          hint="use an install method that needs no kernel boot")

    def close(self) -> None:
        return None

    def __enter__(self) -> "Driver":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- shared waits ------------------------------------------------------------
    def wait_for_state(self, ref: VMRef, wanted: PowerState, timeout: float,
                       interval: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        current = self.state(ref)
        while current != wanted:
            if time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"VM {ref.name!r} did not reach state {wanted.value} within "
                    f"{timeout:.0f}s (it is {current.value})",
                    hint="check the console log with `vmlab status` for its path")
            time.sleep(interval)
            current = self.state(ref)

    def wait_for_ip(self, ref: VMRef, mac: str, timeout: float,
                    within: ipaddress.IPv4Network | None = None,
                    interval: float = 1.0) -> str:
        """The first IPv4 address the NIC with ``mac`` reports (inside ``within``)."""
        deadline = time.monotonic() + timeout
        mac = mac.lower()
        while True:
            for addr in self.interface_addresses(ref).get(mac, []):
                if within is None or ipaddress.IPv4Address(addr) in within:
                    return addr
            if time.monotonic() >= deadline:
                where = f" in {within}" if within else ""
                raise WaitTimeout(
                    f"no IPv4 address{where} for NIC {mac} of VM {ref.name!r} after "
                    f"{timeout:.0f}s",
                    hint="the guest may not have booted or its network is down; "
                         "read the console log")
            time.sleep(interval)

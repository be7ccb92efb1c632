"""Driver registry: a driver module is imported only when a driver is asked for, so that
`vmlab --help` never imports libvirt or pyVmomi; the read-only commands ask for a driver's
reader, which for libvirt leaves out everything that builds or changes a VM."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vmlab.errors import InfrastructureError, UsageError

if TYPE_CHECKING:
    from vmlab.drivers.base import Driver

#: kind -> (module, class name)
DRIVERS: dict[str, tuple[str, str]] = {
    "libvirt": ("vmlab.drivers.libvirt.driver", "LibvirtDriver"),
    "vsphere": ("vmlab.drivers.vsphere", "VsphereDriver"),
}
#: kind -> (module, class name) of the part of the driver that only reads (status, snapshots,
#: ssh): find, state, snapshot_list, ssh_endpoint, console_log_path, glance.
READERS: dict[str, tuple[str, str]] = {
    "libvirt": ("vmlab.drivers.libvirt.reader", "LibvirtReader"),
    "vsphere": ("vmlab.drivers.vsphere", "VsphereDriver"),
}


def _load(kind: str, table: dict[str, tuple[str, str]]) -> Any:
    try:
        module_name, class_name = table[kind]
    except KeyError:
        raise UsageError(f"unknown hypervisor kind {kind!r}",
                         hint=f"use one of: {', '.join(sorted(table))}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = "libvirt" if kind == "libvirt" else "vsphere"
        raise InfrastructureError(
            f"the {kind} driver cannot be loaded: {exc}",
            hint=f"install vmlab with the {extra!r} extra: pip install 'vmlab[{extra}]'",
        ) from exc
    return getattr(module, class_name)


def get_driver_class(kind: str) -> type[Driver]:
    return _load(kind, DRIVERS)


def connect(kind: str, **options: Any) -> Driver:
    """Open a driver of ``kind`` with its connection options."""
    return get_driver_class(kind)(**options)


def connect_reader(kind: str, **options: Any) -> Any:
    """Open the reading part of a driver of ``kind`` (the same options as ``connect``): it
    has the driver's find, state, snapshot_list, ssh_endpoint, console_log_path and glance."""
    return _load(kind, READERS)(**options)

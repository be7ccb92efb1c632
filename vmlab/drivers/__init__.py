"""Driver registry: a driver module is imported only when a driver is asked for, so that
`vmlab --help` never imports libvirt or pyVmomi."""
from __future__ import annotations

import importlib
from typing import Any

from vmlab.drivers.base import Driver
from vmlab.errors import InfrastructureError, UsageError

#: kind -> (module, class name)
DRIVERS: dict[str, tuple[str, str]] = {
    "libvirt": ("vmlab.drivers.libvirt", "LibvirtDriver"),
    "vsphere": ("vmlab.drivers.vsphere", "VsphereDriver"),
}


def get_driver_class(kind: str) -> type[Driver]:
    try:
        module_name, class_name = DRIVERS[kind]
    except KeyError:
        raise UsageError(f"unknown hypervisor kind {kind!r}",
                         hint=f"use one of: {', '.join(sorted(DRIVERS))}") from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = "libvirt" if kind == "libvirt" else "vsphere"
        raise InfrastructureError(
            f"the {kind} driver cannot be loaded: {exc}",
            hint=f"install vmlab with the {extra!r} extra: pip install 'vmlab[{extra}]'",
        ) from exc
    return getattr(module, class_name)


def connect(kind: str, **options: Any) -> Driver:
    """Open a driver of ``kind`` with its connection options."""
    return get_driver_class(kind)(**options)

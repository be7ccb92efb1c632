"""Driver registry, by kind: each driver's folder has a ``kind`` module (its DriverKind: the
options, URI, capabilities and network rules it knows before it connects). A driver module
is imported only when a driver is opened, so that `vmlab --help` never imports libvirt or
pyVmomi; the read-only commands open a driver's reader, which for libvirt leaves out
everything that builds or changes a VM.

A new driver is a folder with a ``kind`` module, a line here and its section in the
profile schema; nothing outside ``drivers/`` names it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vmlab.errors import UsageError

if TYPE_CHECKING:
    from vmlab.drivers.base import Driver
    from vmlab.drivers.kinds import DriverKind, Section

#: kind -> the module holding its ``KIND``
KINDS: dict[str, str] = {
    "libvirt": "vmlab.drivers.libvirt.kind",
    "vsphere": "vmlab.drivers.vsphere.kind",
}


def kind(name: str) -> DriverKind:
    """The DriverKind registered as ``name``."""
    try:
        module_name = KINDS[name]
    except KeyError:
        raise UsageError(f"unknown hypervisor kind {name!r}",
                         hint=f"use one of: {', '.join(sorted(KINDS))}") from None
    return importlib.import_module(module_name).KIND


def open_driver(section: Section) -> Driver:
    """The driver of a hypervisor section (a profile's, or the one a lab's state recorded,
    as JSON data), connected."""
    return kind(section["kind"]).open(section)


def open_reader(section: Section) -> Any:
    """The reading part of the driver of a hypervisor section (a context manager)."""
    return kind(section["kind"]).open_reader(section)


def connect(name: str, **options: Any) -> Driver:
    """Open a driver of kind ``name`` with its constructor arguments as they are (tests, and
    `vmlab nightly` on a bare URI)."""
    found = kind(name)
    return found.load(found.driver)(**options)

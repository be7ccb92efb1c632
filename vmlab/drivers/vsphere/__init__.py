"""The vSphere driver (vCenter or a standalone ESXi host) through pyVmomi.

The driver is in ``driver``; how a profile's hypervisor section becomes one (its options,
URI and capabilities) is in ``kind``, which imports no pyVmomi, so that naming a vSphere
lab's URI or reading its section does not need the vSphere extra installed. Importing this
package loads neither until one is asked for.
"""
from __future__ import annotations

from typing import Any

__all__ = ["VsphereDriver"]


def __getattr__(name: str) -> Any:
    if name == "VsphereDriver":
        from vmlab.drivers.vsphere.driver import VsphereDriver

        return VsphereDriver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

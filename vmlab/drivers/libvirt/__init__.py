"""The libvirt driver: qemu/KVM domains with internal qcow2 snapshots.

Every domain vmlab creates carries a ``<metadata>`` element naming its lab and listing the
volumes and networks made for it; a domain without it is never started, stopped,
snapshotted or destroyed.

The driver is in ``driver``; what only reads (``reader``) imports no more than libvirt, so
`vmlab status` and the other read-only commands do not load the rest. Importing this
package loads neither until one is asked for.
"""
from __future__ import annotations

from typing import Any

__all__ = ["LibvirtDriver", "LibvirtReader"]


def __getattr__(name: str) -> Any:
    if name == "LibvirtDriver":
        from vmlab.drivers.libvirt.driver import LibvirtDriver

        return LibvirtDriver
    if name == "LibvirtReader":
        from vmlab.drivers.libvirt.reader import LibvirtReader

        return LibvirtReader
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Internal qcow2 snapshots of the libvirt driver's domains: taken shut off (``offline``)
or with the guest's RAM (``live``), listed parents first, reverted and deleted. The checks
before taking one are the driver contract's (vmlab.drivers.base.Driver.snapshot_create)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Callable

import libvirt

from vmlab.drivers.refs import Snapshot, VMRef
from vmlab.errors import NotFound

class SnapshotOperations:
    """Mixed into the driver, whose reader provides ``_domain`` (an owned domain), ``_call``
    (a libvirt call whose errors become vmlab's) and ``snapshot_list``."""

    _domain: Callable[[VMRef], libvirt.virDomain]
    _call: Callable[..., Any]
    snapshot_list: Callable[[VMRef], list[Snapshot]]

    def _snapshot_create(self, ref: VMRef, name: str, description: str, live: bool) -> None:
        """Checked by Driver.snapshot_create: an internal snapshot, with the memory of the
        running domain when ``live`` (libvirt takes memory when the domain runs)."""
        domain = self._domain(ref)
        root = ET.Element("domainsnapshot")
        ET.SubElement(root, "name").text = name
        ET.SubElement(root, "description").text = description
        self._call(f"taking snapshot {name!r} of {ref.name}", domain.snapshotCreateXML,
                   ET.tostring(root, encoding="unicode"), 0)

    @staticmethod
    def _snapshot(domain: libvirt.virDomain, name: str) -> libvirt.virDomainSnapshot | None:
        try:
            return domain.snapshotLookupByName(name, 0)
        except libvirt.libvirtError:
            return None

    def snapshot_revert(self, ref: VMRef, name: str) -> None:
        domain = self._domain(ref)
        snap = self._snapshot(domain, name)
        if snap is None:
            raise NotFound(f"VM {ref.name!r} has no snapshot {name!r}")
        self._call(f"reverting {ref.name} to snapshot {name!r}", domain.revertToSnapshot, snap, 0)

    def snapshot_delete(self, ref: VMRef, name: str, children: bool = False) -> None:
        domain = self._domain(ref)
        snap = self._snapshot(domain, name)
        if snap is None:
            raise NotFound(f"VM {ref.name!r} has no snapshot {name!r}")
        flags = libvirt.VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN if children else 0
        self._call(f"deleting snapshot {name!r} of {ref.name}", snap.delete, flags)

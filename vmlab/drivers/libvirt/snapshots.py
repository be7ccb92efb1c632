"""Internal qcow2 snapshots of the libvirt driver's domains: taken shut off (``offline``)
or with the guest's RAM (``live``), listed parents first, reverted and deleted."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Callable

import libvirt

from vmlab.drivers.refs import Snapshot, VMRef
from vmlab.errors import DriverError, NotFound, SnapshotExists

class SnapshotOperations:
    """Mixed into the driver, whose reader provides ``_domain`` (an owned domain), ``_call``
    (a libvirt call whose errors become vmlab's) and ``snapshot_list``."""

    _domain: Callable[[VMRef], libvirt.virDomain]
    _call: Callable[..., Any]
    snapshot_list: Callable[[VMRef], list[Snapshot]]

    def snapshot_create(self, ref: VMRef, name: str, description: str = "",
                        live: bool = False) -> Snapshot:
        domain = self._domain(ref)
        if self._snapshot(domain, name) is not None:
            raise SnapshotExists(f"VM {ref.name!r} already has a snapshot named {name!r}",
                                 hint="snapshot names are unique per VM")
        if live and not domain.isActive():
            raise DriverError(f"a live snapshot needs VM {ref.name} running")
        if not live and domain.isActive():
            raise DriverError(f"an offline snapshot needs VM {ref.name} shut off",
                              hint="stop it first")
        root = ET.Element("domainsnapshot")
        ET.SubElement(root, "name").text = name
        ET.SubElement(root, "description").text = description
        self._call(f"taking snapshot {name!r} of {ref.name}", domain.snapshotCreateXML,
                   ET.tostring(root, encoding="unicode"), 0)
        return next(s for s in self.snapshot_list(ref) if s.name == name)

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

"""libvirt's test driver (`test:///<node file>`) for fast tests that create VMs with media.

It keeps volumes in memory and cannot stream into them (virStorageVolUpload: "this
function is not supported by the connection driver"); the driver reports that as an error,
as it should on a real hypervisor without uploads. A fast test that creates a VM with a
kernel, initrd or ISO there records the uploads instead, with ``record_uploads``.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def record_uploads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """(local file name, volume name) of every upload the libvirt driver makes from now on,
    which the test driver could not hold; nothing is streamed."""
    uploads: list[tuple[str, str]] = []

    def upload(conn, volume, source: Path, progress) -> None:
        uploads.append((source.name, volume.name()))
        progress(f"uploading {source.name}: 100%")

    monkeypatch.setattr("vmlab.drivers.libvirt.storage.upload", upload)
    return uploads

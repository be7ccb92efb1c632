"""Disks and boot files through libvirt storage pools and upload streams only, so the same
code works when the hypervisor is another machine (qemu+ssh://)."""
from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import libvirt

from vmlab.drivers.libvirt.xml import pool_xml, volume_xml
from vmlab.errors import DriverError

CHUNK = 4 << 20
DEFAULT_POOL_PATH = "/var/lib/libvirt/images/vmlab"
BASE_PREFIX = "vmlab-base-"
BASE_VOLUME = re.compile(re.escape(BASE_PREFIX) + r"[^/]+\.qcow2")


def ensure_pool(conn: libvirt.virConnect, name: str, path: str | None) -> libvirt.virStoragePool:
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        pool = conn.storagePoolDefineXML(pool_xml(name, path or DEFAULT_POOL_PATH), 0)
        try:
            pool.build(0)
        except libvirt.libvirtError:
            pass  # the directory exists already
        pool.setAutostart(1)
    if not pool.isActive():
        pool.create(0)
    return pool


def find_volume(pool: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol | None:
    try:
        return pool.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return None


def qcow2_virtual_size(path: Path) -> int:
    info = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True,
                          capture_output=True, text=True).stdout
    return int(json.loads(info)["virtual-size"])


def upload(conn: libvirt.virConnect, volume: libvirt.virStorageVol, source: Path,
           progress: Callable[[str], None]) -> None:
    """Stream a local file into a volume, reporting progress in percent."""
    size = source.stat().st_size
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, size, 0)
        sent, reported = 0, -10
        with source.open("rb") as handle:
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    break
                _send(stream, chunk)
                sent += len(chunk)
                percent = sent * 100 // max(size, 1)
                if percent >= reported + 10:
                    progress(f"uploading {source.name}: {percent}%")
                    reported = percent
        stream.finish()
    except libvirt.libvirtError as exc:
        _abort(stream)
        raise DriverError(f"uploading {source.name} to volume {volume.name()} failed: "
                          f"{exc.get_error_message()}") from exc
    except BaseException:
        _abort(stream)  # Ctrl-C or SIGTERM: a volume is deleted only once its upload ended
        raise


def _abort(stream: libvirt.virStream) -> None:
    try:
        stream.abort()
    except libvirt.libvirtError:
        pass


def _send(stream: libvirt.virStream, data: bytes) -> None:
    view = memoryview(data)
    while view:
        sent = stream.send(view.tobytes())
        if sent < 0:
            raise libvirt.libvirtError("stream send failed")
        view = view[sent:]


def create_volume(conn: libvirt.virConnect, pool: libvirt.virStoragePool, name: str,
                  capacity: int, fmt: str, *, source: Path | None = None,
                  backing: libvirt.virStorageVol | None = None,
                  progress: Callable[[str], None] = lambda _: None) -> libvirt.virStorageVol:
    existing = find_volume(pool, name)
    if existing is not None:
        raise DriverError(f"a volume named {name!r} already exists in pool {pool.name()!r}",
                          hint="an earlier lab of that name left it behind: "
                               "`virsh vol-delete` it, or use another lab name")
    backing_path = backing.path() if backing is not None else None
    volume = pool.createXML(volume_xml(name, capacity, fmt, backing_path), 0)
    if source is not None:
        try:
            upload(conn, volume, source, progress)
        except BaseException:
            delete_volume(volume)
            raise
    return volume


def ensure_base_volume(conn: libvirt.virConnect, pool: libvirt.virStoragePool, image: Path,
                       key: str, progress: Callable[[str], None]) -> libvirt.virStorageVol:
    """The uploaded copy of a cached guest image, shared by every lab built from it."""
    name = base_volume_name(key)
    size = image.stat().st_size
    volume = find_volume(pool, name)
    if volume is not None:
        if _physical_size(volume) == size:
            return volume
        delete_volume(volume)  # a half-finished upload from an interrupted create
    progress(f"uploading the guest image ({size >> 20} MiB)")
    return create_volume(conn, pool, name, qcow2_virtual_size(image), "qcow2", source=image,
                         progress=progress)


def base_volume_name(key: str) -> str:
    return f"{BASE_PREFIX}{key[:16]}.qcow2"


def unused_base_volumes(conn: libvirt.virConnect, pool: libvirt.virStoragePool,
                        min_age: float) -> list[tuple[libvirt.virStorageVol, float]]:
    """The base volumes in ``pool`` that no volume of any active pool is built on and no
    domain names, uploaded at least ``min_age`` seconds ago, with their upload times.

    A base volume outlives its labs so the next lab from the same image skips the upload;
    once the guest image recipe changes, nothing uses the old one again. ``min_age`` keeps
    a base that a create has just uploaded, before its disk exists."""
    pool.refresh(0)
    bases = {v.path(): v for v in pool.listAllVolumes(0) if BASE_VOLUME.fullmatch(v.name())}
    used: set[str] = set()
    for other in conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE):
        for volume in other.listAllVolumes(0):
            backing = ET.fromstring(volume.XMLDesc(0)).findtext("./backingStore/path")
            if backing:
                used.add(backing)
    for domain in conn.listAllDomains(0):
        xml = domain.XMLDesc(0)
        used |= {path for path in bases if path in xml}
    now = time.time()
    unused = []
    for path, volume in sorted(bases.items()):
        if path in used:
            continue
        mtime = ET.fromstring(volume.XMLDesc(0)).findtext("./target/timestamps/mtime")
        uploaded = float(mtime) if mtime else now
        if now - uploaded >= min_age:
            unused.append((volume, uploaded))
    return unused


def _physical_size(volume: libvirt.virStorageVol) -> int:
    try:
        return volume.infoFlags(libvirt.VIR_STORAGE_VOL_GET_PHYSICAL)[2]
    except (libvirt.libvirtError, AttributeError):
        return volume.info()[2]


def delete_volume(volume: libvirt.virStorageVol) -> None:
    try:
        volume.delete(0)
    except libvirt.libvirtError:
        pass

"""Install media: download (resumable, verified, cached), boot files read out of an ISO,
and the OEMDRV volume that carries a kickstart where kernel arguments cannot be passed."""
from __future__ import annotations

import hashlib
import http.client
import io
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import pycdlib

from vmlab.errors import InfrastructureError

CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch_iso(url: str, sha256: str | None, cache_dir: Path,
              progress: Callable[[str], None] = lambda _: None) -> Path:
    """The file at ``url`` in ``cache_dir``: downloaded once (resuming a partial download),
    verified against ``sha256`` and reused without a network call afterwards.

    A checksum mismatch deletes the file and is an error. Without ``sha256`` the file is
    cached as downloaded (profiles should give one).
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    name = Path(urlsplit(url).path).name or "download"
    final = cache_dir / name
    verified = final.with_name(name + ".sha256")
    if final.is_file() and verified.is_file() and (
            sha256 is None or verified.read_text().split()[0] == sha256):
        progress("cached")
        return final
    partial = final.with_name(name + ".part")
    _download(url, partial, progress)
    actual = file_sha256(partial)
    if sha256 is not None and actual != sha256.lower():
        partial.unlink(missing_ok=True)
        raise InfrastructureError(f"{name} from {url} has sha256 {actual}, expected {sha256}",
                                  hint="the download was corrupt or the profile's checksum is "
                                       "wrong; the bad file was deleted, run again to retry")
    partial.rename(final)
    verified.write_text(f"{actual}  {name}\n")
    return final


def _download(url: str, partial: Path, progress: Callable[[str], None]) -> None:
    offset = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url)
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - profile's URL
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file is already complete
            return
        raise InfrastructureError(f"downloading {url} failed: HTTP {exc.code}",
                                  hint="check the URL in the profile") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise InfrastructureError(f"downloading {url} failed: {exc}",
                                  hint="is the host reachable from here?") from exc
    with response:
        resumed = offset and getattr(response, "status", 200) == 206
        mode = "ab" if resumed else "wb"
        total = int(response.headers.get("Content-Length") or 0) + (offset if resumed else 0)
        done = offset if resumed else 0
        reported = -10
        try:
            with partial.open(mode) as handle:
                for block in iter(lambda: response.read(CHUNK), b""):
                    handle.write(block)
                    done += len(block)
                    percent = done * 100 // total if total else 0
                    if percent >= reported + 10:
                        progress(f"downloading {partial.stem}: {percent}%")
                        reported = percent
        except (OSError, http.client.HTTPException) as exc:
            raise InfrastructureError(f"downloading {url} was cut off after {done} bytes: {exc}",
                                      hint="run again: the download resumes where it stopped") \
                from exc
    if total and done < total:
        raise InfrastructureError(f"downloading {url} was cut off after {done} of {total} bytes",
                                  hint="run again: the download resumes where it stopped")


def extract_boot_files(iso: Path, dest_dir: Path) -> tuple[Path, Path]:
    """The installer's kernel and initrd (images/pxeboot) read out of the ISO, cached."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    kernel, initrd = dest_dir / "vmlinuz", dest_dir / "initrd.img"
    if kernel.is_file() and initrd.is_file():
        return kernel, initrd
    image = pycdlib.PyCdlib()
    try:
        image.open(str(iso))
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise InfrastructureError(f"{iso} is not a readable ISO image: {exc}") from exc
    try:
        for name, target in (("vmlinuz", kernel), ("initrd.img", initrd)):
            buffer = io.BytesIO()
            _read_file(image, f"/images/pxeboot/{name}", buffer)
            part = target.with_suffix(".part")
            part.write_bytes(buffer.getvalue())
            part.rename(target)
    finally:
        image.close()
    return kernel, initrd


def _read_file(image: pycdlib.PyCdlib, path: str, out: io.BytesIO) -> None:
    """Read by Rock Ridge name, then Joliet, then plain ISO9660 (``/IMAGES/PXEBOOT/X.;1``)."""
    attempts = []
    if image.has_rock_ridge():
        attempts.append({"rr_path": path})
    if image.has_joliet():
        attempts.append({"joliet_path": path})
    iso_name = path.upper() + ";1"
    attempts.append({"iso_path": iso_name})
    for kwargs in attempts:
        try:
            image.get_file_from_iso_fp(out, **kwargs)
            return
        except pycdlib.pycdlibexception.PyCdlibException:
            out.seek(0)
            out.truncate()
    raise InfrastructureError(f"the ISO has no {path}",
                              hint="use the CentOS 7 x86_64 Minimal or DVD ISO")


def make_oemdrv_iso(kickstart_text: str, dest: Path) -> Path:
    """An ISO labelled OEMDRV with ks.cfg at its root: anaconda reads it automatically."""
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, vol_ident="OEMDRV", rock_ridge="1.09", joliet=3)
    data = kickstart_text.encode()
    image.add_fp(io.BytesIO(data), len(data), "/KS.CFG;1", rr_name="ks.cfg",
                 joliet_path="/ks.cfg")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(".part")
    image.write(str(part))
    image.close()
    shutil.move(part, dest)
    return dest


def install_boot_cmdline(*, ks_url: str, stage2: str, extra: str = "") -> str:
    """Anaconda boot options: kickstart by URL, the install image, a serial console."""
    options = [f"inst.ks={ks_url}", f"inst.stage2={stage2}", "inst.text",
               "console=ttyS0,115200", "ip=dhcp"]
    if extra:
        options.append(extra)
    return " ".join(options)

"""The kernel release of debian-installer's netboot initrd, read from the initrd itself.

Once it runs, debian-installer downloads its kernel modules from the mirror as udebs named
for the release of the kernel it booted (``ext4-modules-<release>-di``, ...). Netboot
images from another point release than the mirror's boot a kernel the mirror has no module
udebs for, and the installer stops at "No kernel modules were found". The release is the one
folder under ``lib/modules/`` in the initrd, so preflight reads it from there and compares
it with what the mirror lists (vmlab.preflight.installer).

The initrd is an initramfs: one or more newc cpio archives, each uncompressed or
gzip-compressed (possibly in several concatenated gzip members), one after another with
zero padding between them (the kernel's Documentation/driver-api/early-userspace/
buffer-format.rst). Debian's is one gzip'd archive of about 40 MB: it is read as a stream,
nothing is written to disk.
"""
from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from vmlab.errors import InfrastructureError

NEWC_MAGICS = (b"070701", b"070702")  # without and with checksums
GZIP_MAGIC = b"\x1f\x8b"
HEADER_BYTES = 110  # the magic and 13 fields of 8 hex digits
TRAILER = "TRAILER!!!"
S_IFMT, S_IFDIR = 0o170000, 0o040000
CHUNK = 1 << 20
_MODULES = re.compile(r"(?:usr/)?lib/modules/(?P<release>[^/]+)(?P<below>/.+)?")


class _Stream:
    """Reads exactly what is asked (less only at the end), and takes back what was read."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.pending = b""

    def read(self, size: int) -> bytes:
        data, self.pending = self.pending[:size], self.pending[size:]
        while len(data) < size:
            more = self.source.read(size - len(data))
            if not more:
                break
            data += more
        return data

    def unread(self, data: bytes) -> None:
        self.pending = data + self.pending

    def skip(self, size: int) -> None:
        while size > 0:
            got = len(self.read(min(size, CHUNK)))
            if not got:
                raise EOFError("the archive ends inside a file")
            size -= got

    def next_bytes(self, size: int) -> bytes:
        """What comes after any zero padding (b"" at the end), not consumed."""
        while chunk := self.read(CHUNK):
            rest = chunk.lstrip(b"\0")
            if rest:
                self.unread(rest)
                head = self.read(size)
                self.unread(head)
                return head
        return b""


def initrd_kernel_version(initrd: Path) -> str:
    """The kernel release the initrd's modules are for: its one ``lib/modules/<release>/``."""
    try:
        with initrd.open("rb") as source:
            releases = _releases(_Stream(source), initrd)
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(initrd, f"cannot read it: {exc}") from exc
    if len(releases) != 1:
        found = ", ".join(sorted(releases)) or "none"
        raise _unreadable(initrd, f"it should hold the modules of one kernel under "
                                  f"lib/modules/<release>/, it holds {found}")
    return releases.pop()


def _unreadable(initrd: Path, why: str) -> InfrastructureError:
    return InfrastructureError(
        f"{initrd} is not a debian-installer initrd vmlab can read: {why}",
        hint="set install.netboot_dir to the folder of debian-installer's netboot linux and "
             "initrd.gz (Debian's debian-installer-<N>-netboot-amd64 package), or reinstall "
             "that package")


def _releases(stream: _Stream, initrd: Path) -> set[str]:
    releases: set[str] = set()
    for name, mode in _entries(stream, initrd, compressed_ok=True):
        match = _MODULES.fullmatch(name.lstrip("./"))
        if match and (match["below"] or mode & S_IFMT == S_IFDIR):
            releases.add(match["release"])
    return releases


def _entries(stream: _Stream, initrd: Path, *, compressed_ok: bool) \
        -> Iterator[tuple[str, int]]:
    """(name, mode) of every entry of every archive, in order."""
    while head := stream.next_bytes(len(NEWC_MAGICS[0])):
        if compressed_ok and head.startswith(GZIP_MAGIC):
            # gzip reads its concatenated members to the end of the file
            unpacked = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[arg-type]
            yield from _entries(_Stream(unpacked), initrd, compressed_ok=False)
            return
        if head not in NEWC_MAGICS:
            what = "a gzip-compressed or uncompressed" if compressed_ok else "a"
            raise _unreadable(initrd, f"it is not {what} newc cpio archive (it starts "
                                      f"with {head!r})")
        yield from _archive(stream, initrd)


def _archive(stream: _Stream, initrd: Path) -> Iterator[tuple[str, int]]:
    """The entries of one newc archive, up to its TRAILER!!! record."""
    while True:
        header = stream.read(HEADER_BYTES)
        if len(header) < HEADER_BYTES or header[:6] not in NEWC_MAGICS:
            raise _unreadable(initrd, "a cpio header is cut off or damaged")
        try:
            fields = [int(header[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise _unreadable(initrd, "a cpio header is damaged") from None
        mode, size, name_size = fields[1], fields[6], fields[11]
        name = stream.read(name_size).rstrip(b"\0").decode("utf-8", "replace")
        stream.skip(_padding(HEADER_BYTES + name_size))
        if name == TRAILER:
            return
        yield name, mode
        stream.skip(size + _padding(size))


def _padding(size: int) -> int:
    return -size % 4

"""Whether the Debian mirror holds what debian-installer downloads once it runs.

The netboot initrd holds only what it needs to reach the network; everything else (the
mirror setup, partitioning, the base system's installer, the boot loader's) comes from the
mirror as udebs listed in ``dists/<suite>/main/debian-installer/binary-amd64/Packages``. A
mirror that lists them but does not serve them (a partial mirror or a caching proxy) stops
the installer at its "Download installer components" dialog, and vmlab would wait for the
whole install timeout: asking for a few of them here turns that into a clear error.

The kernel modules come from there too, as udebs named for the release of the kernel the
installer booted (``kernel-image-<release>-di``, ``ext4-modules-<release>-di``, ...). Netboot
images from another point release than the mirror's boot a kernel the index has no modules
for, and the installer stops at "No kernel modules were found": check_kernel compares the
netboot initrd's kernel (vmlab.netboot) with the index the components check read.
"""
from __future__ import annotations

import lzma
import re
import urllib.error
import urllib.request
from pathlib import Path

from vmlab import __version__
from vmlab.drivers.base import Check

#: udebs every netboot install downloads (the first is the first it asks for); vmlab's
#: preseed formats ext4, for which partman loads e2fsprogs-udeb
ALWAYS_LOADED = ("apt-mirror-setup", "apt-setup-udeb", "base-installer", "bootstrap-base",
                 "partman-base", "partman-auto", "grub-installer", "pkgsel",
                 "finish-install", "e2fsprogs-udeb")
PACKAGES_LIMIT = 4 << 20
#: the udeb of the installer's kernel; its modules are ``<name>-modules-<release>-di``
KERNEL_IMAGE = re.compile(r"^Package: kernel-image-(?P<release>\S+)-di$", re.M)
KERNEL_CHECK = "debian-installer's kernel modules"
#: module udebs of the netboot kernel every install loads: the kernel's own and ext4's
KERNEL_UDEBS = ("kernel-image-{release}-di", "ext4-modules-{release}-di")


def udeb_index_url(mirror: str, suite: str) -> str:
    return f"{mirror}/dists/{suite}/main/debian-installer/binary-amd64/Packages.xz"


def filenames(index: bytes, packages: tuple[str, ...] = ALWAYS_LOADED) -> dict[str, str]:
    """package -> its Filename in a debian-installer Packages file."""
    found: dict[str, str] = {}
    for stanza in index.decode("utf-8", "replace").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines()
                      if ": " in line and not line.startswith(" "))
        if fields.get("Package") in packages and "Filename" in fields:
            found[fields["Package"]] = fields["Filename"]
    return found


def _request(url: str, method: str, timeout: float) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method,
                                     headers={"User-Agent": f"vmlab-preflight/{__version__}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read(PACKAGES_LIMIT) if method == "GET" else b""
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def check_components(what: str, mirror: str, suite: str, timeout: float,
                     fix: str) -> Check:
    return read_components(what, mirror, suite, timeout, fix)[0]


def read_components(what: str, mirror: str, suite: str, timeout: float,
                    fix: str) -> tuple[Check, bytes | None]:
    """The components check, and the udeb index it read (None when it could not), for the
    netboot kernel's check (check_kernel) to use rather than fetch it again."""
    index_url = udeb_index_url(mirror, suite)
    index = None
    try:
        status, body = _request(index_url, "GET", timeout)
        if status != 200:
            return Check("urls", what, "fail",
                         f"{index_url}: HTTP {status}; the installer could not load its "
                         "components", fix), None
        index = lzma.decompress(body)
        names = filenames(index)
        missing = [name for name in ALWAYS_LOADED if name not in names]
        absent = []
        for name in ALWAYS_LOADED:
            if name in names:
                status, _ = _request(f"{mirror}/{names[name]}", "HEAD", timeout)
                if status != 200:
                    absent.append(f"{names[name]} (HTTP {status})")
    except (OSError, lzma.LZMAError, ValueError) as exc:
        return Check("urls", what, "fail", f"{index_url}: {exc}", fix), index
    if missing or absent:
        detail = "; ".join(
            ([f"not listed: {', '.join(missing)}"] if missing else [])
            + ([f"listed but not served: {', '.join(absent)}"] if absent else []))
        return Check("urls", what, "fail",
                     f"{mirror} lacks components debian-installer downloads ({detail}): "
                     "the installer would stop at 'Download installer components'", fix), index
    return Check("urls", what, "ok", f"{mirror}: the installer's components answer "
                 f"({len(ALWAYS_LOADED)} checked)"), index


# -- the netboot kernel -----------------------------------------------------------------

def kernel_releases(index: bytes) -> list[str]:
    """The kernel releases a debian-installer Packages file has module udebs for, from its
    ``kernel-image-<release>-di`` packages (oldest first)."""
    releases = {match["release"] for match in KERNEL_IMAGE.finditer(
        index.decode("utf-8", "replace"))}
    return sorted(releases, key=_version_key)


def check_kernel(mirror: str, suite: str, initrd: Path, release: str, index: bytes,
                 timeout: float = 10.0) -> Check:
    """Whether the mirror's udeb index has modules for ``release``, the kernel of the netboot
    ``initrd``, and serves them: the installer downloads them from the mirror and stops at
    "No kernel modules were found" when they are not there for the kernel it booted."""
    from vmlab.profileinstall import PRESEED_SUITES

    listed = kernel_releases(index)
    package = f"debian-installer-{PRESEED_SUITES.get(suite, '<N>')}-netboot-amd64"
    fix = ("use netboot images from the same point release as the mirror: update "
           f"{package} (`apt-get install --only-upgrade {package}`), or set "
           "install.netboot_dir to images whose kernel the mirror lists and serves")
    if release not in listed:
        return Check("urls", KERNEL_CHECK, "fail",
                     f"{udeb_index_url(mirror, suite)} lists kernel modules for "
                     f"{', '.join(listed) or 'no kernel'}, not for {release}, the kernel of "
                     f"{initrd}: the installer would stop at 'No kernel modules were found'",
                     fix)
    names = filenames(index, tuple(name.format(release=release) for name in KERNEL_UDEBS))
    absent = []
    try:
        for filename in names.values():
            status, _ = _request(f"{mirror}/{filename}", "HEAD", timeout)
            if status != 200:
                absent.append(f"{filename} (HTTP {status})")
    except OSError as exc:
        absent.append(str(exc))
    if absent:
        return Check("urls", KERNEL_CHECK, "fail",
                     f"{mirror} lists kernel modules for the netboot kernel {release} but does "
                     f"not serve them ({', '.join(absent)}): the installer would stop at "
                     "'No kernel modules were found'", fix)
    return Check("urls", KERNEL_CHECK, "ok",
                 f"{mirror}: serves kernel modules for the netboot kernel {release}")


def _version_key(release: str) -> list[tuple[int, str]]:
    return [(int(part), "") if part.isdigit() else (-1, part)
            for part in re.split(r"(\d+)", release) if part]

"""Whether the Debian mirror holds what debian-installer downloads once it runs.

The netboot initrd holds only what it needs to reach the network; everything else (the
mirror setup, partitioning, the base system's installer, the boot loader's) comes from the
mirror as udebs listed in ``dists/<suite>/main/debian-installer/binary-amd64/Packages``. A
mirror that lists them but does not serve them (a partial mirror or a caching proxy) stops
the installer at its "Download installer components" dialog, and vmlab would wait for the
whole install timeout: asking for a few of them here turns that into a clear error.
"""
from __future__ import annotations

import lzma
import urllib.error
import urllib.request

from vmlab import __version__
from vmlab.drivers.base import Check

#: udebs every netboot install downloads (the first is the first it asks for)
ALWAYS_LOADED = ("apt-mirror-setup", "apt-setup-udeb", "base-installer", "bootstrap-base",
                 "partman-base", "partman-auto", "grub-installer", "pkgsel",
                 "finish-install")
PACKAGES_LIMIT = 4 << 20


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
    index_url = udeb_index_url(mirror, suite)
    try:
        status, body = _request(index_url, "GET", timeout)
        if status != 200:
            return Check("urls", what, "fail",
                         f"{index_url}: HTTP {status}; the installer could not load its "
                         "components", fix)
        names = filenames(lzma.decompress(body))
        missing = [name for name in ALWAYS_LOADED if name not in names]
        absent = []
        for name in ALWAYS_LOADED:
            if name in names:
                status, _ = _request(f"{mirror}/{names[name]}", "HEAD", timeout)
                if status != 200:
                    absent.append(f"{names[name]} (HTTP {status})")
    except (OSError, lzma.LZMAError, ValueError) as exc:
        return Check("urls", what, "fail", f"{index_url}: {exc}", fix)
    if missing or absent:
        detail = "; ".join(
            ([f"not listed: {', '.join(missing)}"] if missing else [])
            + ([f"listed but not served: {', '.join(absent)}"] if absent else []))
        return Check("urls", what, "fail",
                     f"{mirror} lacks components debian-installer downloads ({detail}): "
                     "the installer would stop at 'Download installer components'", fix)
    return Check("urls", what, "ok", f"{mirror}: the installer's components answer "
                 f"({len(ALWAYS_LOADED)} checked)")

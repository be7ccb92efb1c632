"""debian-installer's archive for the tests' real preseed installs, from what the mirror here
serves.

debian-installer downloads most of itself (partitioning, the base system's installer, the
boot loader's) as udebs listed in ``dists/<suite>/main/debian-installer/binary-amd64/
Packages``. The mirror this test environment reaches lists them all but does not serve
some: for Debian 13 the udebs of e2fsprogs, util-linux, glibc and a few libraries, and the
kernel modules of its newest kernels. Everything else an install needs is served: the
other udebs, the regular packages those missing udebs are built from, the base system, and
older netboot images whose kernel's module udebs are all there.

So the tests build the archive an installer would see on a complete mirror: the same
index, where each udeb the mirror does not serve is rebuilt from the regular packages of the
same source and version (the same files, at the paths Debian's ``Contents-udeb`` lists), a
``Release`` for that index signed with a key of the test's own, and the netboot initrd with
that key added to the installer's archive keyring (initramfs takes concatenated archives:
a later one's file replaces an earlier one's). The server (``python -m
tests.installer_archive``) answers from that archive and passes everything else to the
real mirror: the base system, the installed system's apt and its security suite get
Debian's own signed files (apt and debootstrap read ``InRelease``; only debian-installer's
component loader reads ``Release``). What vmlab runs is what it runs against any mirror.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import email.utils
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

from vmlab.netboot import initrd_kernel_version

UPSTREAM = "http://deb.debian.org"
#: suite -> Debian's version number (the netboot package's name carries it)
NUMBERS = {"bookworm": "12", "trixie": "13"}
DI_INDEX = "main/debian-installer/binary-amd64/Packages"
#: fields of a Packages stanza that describe the file, not the package
FILE_FIELDS = ("Filename", "Size", "MD5sum", "SHA1", "SHA256", "Description-md5")
#: regular packages of a source that never hold what a udeb holds
NOT_RUNTIME = re.compile(r"(-dev|-doc|-dbg|-dbgsym|-static|-l10n|-i386|-x32|-tests?)$"
                         r"|^(lib32|libx32|locales)")

Stanza = dict[str, str]
Log = Callable[[str], None]


@dataclass(frozen=True)
class Archive:
    root: Path            # served at /: debian/dists/..., debian/pool/... (rebuilt udebs)
    netboot: Path         # linux and initrd.gz (the key added)
    kernel_release: str
    rebuilt: tuple[str, ...]
    dropped: tuple[str, ...]


# -- the mirror ---------------------------------------------------------------------------
def _get(url: str, timeout: float = 120) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
        return response.read()


def _served(url: str) -> bool:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=60):  # noqa: S310
            return True
    except urllib.error.HTTPError:
        return False


def _download(url: str, target: Path) -> Path:
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(target.suffix + ".part")
        with urllib.request.urlopen(url, timeout=300) as response, \
                partial.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out, 1 << 20)
        partial.rename(target)
    return target


def parse_stanzas(text: str) -> list[Stanza]:
    """A Packages file's stanzas, field -> value (continuation lines kept)."""
    stanzas = []
    for block in text.strip().split("\n\n"):
        fields: Stanza = {}
        key = ""
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields:
            stanzas.append(fields)
    return stanzas


def format_stanza(fields: Stanza) -> str:
    return "".join(f"{key}: {value}\n" for key, value in fields.items())


def _source(fields: Stanza) -> str:
    return fields.get("Source", fields["Package"]).split()[0]


def udeb_contents(text: str) -> dict[str, list[str]]:
    """udeb -> the paths it holds, from a Contents-udeb file."""
    files: dict[str, list[str]] = {}
    for line in text.splitlines():
        path, _, owners = line.rpartition(" ")
        for owner in owners.split(","):
            files.setdefault(owner.rsplit("/", 1)[-1], []).append(path.strip())
    return files


# -- rebuilding a udeb from regular packages -----------------------------------------------
#: what a udeb carries that a regular package keeps elsewhere or not at all
NOT_NEEDED = ("usr/share/lintian/", "usr/share/doc/")
MULTIARCH = "x86_64-linux-gnu/"


def _find(tree: Path, path: str) -> Path | None:
    """``path`` in an unpacked package, also across the /usr merge and in the multiarch
    library folder (some udebs keep libraries in /usr/lib itself)."""
    bare = path.removeprefix("usr/")
    candidates = [path, f"usr/{bare}", bare]
    for lib in ("usr/lib/", "lib/"):
        if path.startswith(lib) and not path.startswith(lib + MULTIARCH):
            candidates.append(f"usr/lib/{MULTIARCH}{path.removeprefix(lib)}")
    for candidate in candidates:
        if os.path.lexists(tree / candidate):
            return tree / candidate
    return None


def rebuild_udeb(udeb: Stanza, paths: list[str], regular: list[Stanza], cache: Path,
                 out: Path) -> bool:
    """Build ``out`` with the files ``paths`` names, taken from the regular packages of the
    udeb's source; False when they do not hold them all."""
    wanted = udeb["Package"].removesuffix("-udeb")
    ordered = sorted(regular, key=lambda p: (p["Package"] != wanted,
                                             not p["Package"].startswith(wanted[:4]),
                                             p["Package"]))
    paths = [path for path in paths if not path.startswith(NOT_NEEDED)]
    found: dict[str, Path] = {}
    for package in ordered:
        missing = [path for path in paths if path not in found]
        if not missing:
            break
        deb = _download(f"{UPSTREAM}/debian/{package['Filename']}",
                        cache / "debs" / Path(package["Filename"]).name)
        tree = cache / "unpacked" / deb.stem
        if not tree.exists():
            partial = tree.with_name(tree.name + ".part")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True)
            partial.rename(tree)
        for path in missing:
            location = _find(tree, path)
            if location is not None:
                found[path] = location
    if len(found) < len(paths):
        return False
    with tempfile.TemporaryDirectory(prefix="udeb-") as tmp:
        root = Path(tmp)
        for path, location in found.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(location, root / path, follow_symlinks=False)
        (root / "DEBIAN").mkdir()
        control = {k: v for k, v in udeb.items() if k not in FILE_FIELDS}
        (root / "DEBIAN" / "control").write_text(format_stanza(control))
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root),
                        str(out)], check=True, stdout=subprocess.DEVNULL)
    return True


def _same_build(udeb: Stanza, regular: list[Stanza]) -> list[Stanza]:
    """The regular packages built with the udeb: of its version, else (the regular ones
    had a security update since) of the newest version of the same source."""
    same = [p for p in regular if p["Version"] == udeb["Version"]]
    if same or not regular:
        return same
    newest = max(regular, key=lambda p: _version_key(p["Version"]))["Version"]
    return [p for p in regular if p["Version"] == newest]


def _version_key(version: str) -> list[tuple[int, object]]:
    """Good enough for versions of one source: numbers compare as numbers."""
    return [(0, int(part)) if part.isdigit() else (1, part)
            for part in re.split(r"(\d+)", version)]


def _with_file(udeb: Stanza, path: Path) -> Stanza:
    data = path.read_bytes()
    fields = {k: v for k, v in udeb.items() if k not in FILE_FIELDS}
    fields.update(Filename=udeb["Filename"], Size=str(len(data)),
                  MD5sum=hashlib.md5(data).hexdigest(),  # noqa: S324 - the index's field
                  SHA256=hashlib.sha256(data).hexdigest())
    return fields


# -- the netboot images --------------------------------------------------------------------
def _netboot_versions(main: list[Stanza], number: str) -> tuple[str, list[str]]:
    """The pool folder and the versions of debian-installer-<N>-netboot-amd64 to try,
    newest first: the one the index lists, then the point releases before it."""
    name = f"debian-installer-{number}-netboot-amd64"
    current = next(p for p in main if p["Package"] == name)
    base, _, update = current["Version"].rpartition("u")
    versions = [current["Version"]]
    if update.isdigit() and base.endswith(f"+deb{number}"):
        versions += [f"{base}u{n}" for n in range(int(update) - 1, 0, -1)]
        versions.append(base.removesuffix(f"+deb{number}"))
    return current["Filename"].rsplit("/", 1)[0], versions


def choose_netboot(cache: Path, main: list[Stanza], number: str, usable: Callable[[str], bool],
                   log: Log) -> tuple[Path, str]:
    """The newest netboot images whose kernel's module udebs the mirror serves."""
    folder, versions = _netboot_versions(main, number)
    name = f"debian-installer-{number}-netboot-amd64"
    for version in versions:
        url = f"{UPSTREAM}/debian/{folder}/{name}_{version}_all.deb"
        images = cache / "netboot" / version
        if not (images / "initrd.gz").exists():
            if not _served(url):
                continue
            log(f"downloading {name} {version}")
            deb = _download(url, cache / "debs" / f"{name}_{version}_all.deb")
            with tempfile.TemporaryDirectory(prefix="netboot-") as tmp:
                subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
                source = Path(tmp) / (f"usr/lib/debian-installer/images/{number}/amd64/text/"
                                      "debian-installer/amd64")
                images.mkdir(parents=True, exist_ok=True)
                for file in ("linux", "initrd.gz"):
                    shutil.copy(source / file, images / file)
            deb.unlink()
        release = initrd_kernel_version(images / "initrd.gz")
        if usable(release):
            log(f"netboot images {version}: kernel {release}, its modules served")
            return images, release
        log(f"netboot images {version}: kernel {release}, its module udebs not served")
    raise RuntimeError(f"no {name} on the mirror has a kernel whose module udebs it serves")


# -- the key --------------------------------------------------------------------------------
def _gpg(home: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--quiet", *args],
                          check=True, stdin=subprocess.DEVNULL, **kwargs)


@contextlib.contextmanager
def _gnupg(cache: Path) -> Iterator[Path]:
    """A GnuPG home holding the test's key (no passphrase; made once, kept in ``cache``).
    The home is a short temporary folder, as gpg-agent's socket lives there (a socket path
    has at most 107 bytes); its agent is stopped and the folder removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="vmlab-gpg-"))
    secret, public = cache / "signing-key.sec", cache / "signing-key.pub"
    try:
        if secret.exists():
            _gpg(home, "--import", str(secret))
        else:
            _gpg(home, "--passphrase", "", "--quick-gen-key",
                 "vmlab tests' installer archive", "rsa3072", "sign", "never")
            cache.mkdir(parents=True, exist_ok=True)
            public.write_bytes(_gpg(home, "--export", capture_output=True).stdout)
            exported = _gpg(home, "--export-secret-keys", capture_output=True).stdout
            secret.touch(mode=0o600)
            secret.write_bytes(exported)
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(home, ignore_errors=True)


def public_key(cache: Path) -> bytes:
    """The test's public key (made on first use)."""
    if not (cache / "signing-key.pub").exists():
        with _gnupg(cache):
            pass
    return (cache / "signing-key.pub").read_bytes()


def sign(cache: Path, path: Path, signature: Path) -> None:
    """A detached signature of ``path`` by the test's key."""
    with _gnupg(cache) as home:
        _gpg(home, "--yes", "--detach-sign", "--output", str(signature), str(path))


def initrd_with_key(initrd: Path, public_key: bytes, out: Path) -> None:
    """``initrd`` followed by an archive holding the installer's archive keyring: Debian's
    keys and ``public_key``."""
    with tempfile.TemporaryDirectory(prefix="initrd-") as tmp:
        root = Path(tmp)
        # bookworm's initrd has the keyring as .gpg, trixie's as .pgp (.gpg: a link to it)
        listed = subprocess.run(
            ["sh", "-c", 'zcat "$1" | cpio -i --quiet --to-stdout '
                         "'usr/share/keyrings/debian-archive-keyring.*'", "-", str(initrd)],
            check=True, capture_output=True).stdout
        if not listed:
            raise RuntimeError(f"{initrd} holds no debian-archive-keyring")
        keyring = root / "usr/share/keyrings/archive.gpg"
        keyring.parent.mkdir(parents=True)
        keyring.write_bytes(listed + public_key)
        archive = subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet", "--owner=0:0"],
            input=b"usr\nusr/share\nusr/share/keyrings\nusr/share/keyrings/archive.gpg\n",
            cwd=root, check=True, capture_output=True).stdout
        out.write_bytes(initrd.read_bytes() + gzip.compress(archive))


# -- the whole archive ----------------------------------------------------------------------
def build(cache: Path, suite: str, log: Log = lambda line: None) -> Archive:
    """The archive for ``suite`` under ``cache``/<index hash>, built once per mirror index."""
    number = NUMBERS[suite]
    dists = f"{UPSTREAM}/debian/dists/{suite}"
    index_xz = _get(f"{dists}/{DI_INDEX}.xz")
    root = cache / hashlib.sha256(index_xz).hexdigest()[:16]
    made = root / "archive.json"
    if made.exists():
        saved = json.loads(made.read_text())
        return Archive(root, root / "netboot", saved["kernel_release"],
                       tuple(saved["rebuilt"]), tuple(saved["dropped"]))
    udebs = parse_stanzas(lzma.decompress(index_xz).decode())
    main = parse_stanzas(lzma.decompress(_get(f"{dists}/main/binary-amd64/Packages.xz"))
                         .decode())
    contents = udeb_contents(gzip.decompress(_get(f"{dists}/main/Contents-udeb-amd64.gz"))
                             .decode())
    log(f"{len(udebs)} udebs listed for {suite}; asking the mirror which it serves")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        served = dict(zip((u["Package"] for u in udebs),
                          pool.map(lambda u: _served(f"{UPSTREAM}/debian/{u['Filename']}"),
                                   udebs)))
    netboot, release = choose_netboot(
        cache, main, number,
        lambda r: served.get(f"kernel-image-{r}-di", False), log)

    by_source: dict[str, list[Stanza]] = {}
    for package in main:
        if not NOT_RUNTIME.search(package["Package"]):
            by_source.setdefault(_source(package), []).append(package)
    kept, rebuilt, dropped = [], [], []
    for udeb in udebs:
        name = udeb["Package"]
        if served[name]:
            kept.append(udeb)
            continue
        out = root / "debian" / udeb["Filename"]
        regular = _same_build(udeb, by_source.get(_source(udeb), []))
        if ("Kernel-Version" not in udeb and name in contents and regular
                and rebuild_udeb(udeb, contents[name], regular, cache, out)):
            kept.append(_with_file(udeb, out))
            rebuilt.append(name)
        else:
            dropped.append(name)
    log(f"rebuilt {len(rebuilt)} udebs from regular packages: {', '.join(rebuilt)}; "
        f"left out {len(dropped)} the mirror does not serve")

    index = "\n".join(format_stanza(u) for u in kept).encode()
    dist = root / "debian" / "dists" / suite
    (dist / DI_INDEX).parent.mkdir(parents=True, exist_ok=True)
    (dist / DI_INDEX).write_bytes(index)
    upstream = dict(line.split(": ", 1) for line in _get(f"{dists}/Release").decode()
                    .splitlines() if ": " in line and not line.startswith(" "))
    release_file = "".join(f"{key}: {upstream[key]}\n" for key in
                           ("Origin", "Label", "Suite", "Version", "Codename") if key in upstream)
    release_file += (f"Date: {email.utils.formatdate(usegmt=True)}\n"
                     "Architectures: all amd64\nComponents: main\n"
                     "Description: debian-installer's components, completed from regular "
                     "packages for vmlab's tests\nSHA256:\n"
                     f" {hashlib.sha256(index).hexdigest()} {len(index)} {DI_INDEX}\n")
    (dist / "Release").write_text(release_file)
    sign(cache, dist / "Release", dist / "Release.gpg")
    (root / "netboot").mkdir(exist_ok=True)
    shutil.copy(netboot / "linux", root / "netboot" / "linux")
    initrd_with_key(netboot / "initrd.gz", public_key(cache), root / "netboot" / "initrd.gz")
    made.write_text(json.dumps({"kernel_release": release, "rebuilt": rebuilt,
                                "dropped": dropped}, indent=1))
    return Archive(root, root / "netboot", release, tuple(rebuilt), tuple(dropped))


# -- the server -----------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    root: Path
    log_file: Path

    def log_message(self, format: str, *args: object) -> None:
        with self.log_file.open("a") as log:
            log.write(f"{self.client_address[0]} {format % args}\n")

    def _answer(self, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        local = (self.root / path.lstrip("/")).resolve()
        if local.is_relative_to(self.root) and local.is_file():
            self.send_response(200)
            self.send_header("Content-Length", str(local.stat().st_size))
            self.end_headers()
            if body:
                with local.open("rb") as data:
                    shutil.copyfileobj(data, self.wfile, 1 << 20)
            return
        request = urllib.request.Request(UPSTREAM + path, method=self.command)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
                self.send_response(response.status)
                for header in ("Content-Length", "Content-Type", "Last-Modified", "ETag"):
                    if response.headers.get(header):
                        self.send_header(header, response.headers[header])
                self.end_headers()
                if body:
                    shutil.copyfileobj(response, self.wfile, 1 << 20)
        except urllib.error.HTTPError as exc:
            self.send_error(exc.code)
        except OSError:
            self.send_error(502)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=True)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(body=False)


def serve(root: Path, address: str, port: int, log_file: Path) -> None:
    handler = type("Handler", (_Handler,), {"root": root.resolve(), "log_file": log_file})
    server = ThreadingHTTPServer((address, port), handler)
    server.daemon_threads = True
    print(f"serving {root} on {address}:{server.server_address[1]}", flush=True)
    server.serve_forever()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--address", default="0.0.0.0")  # noqa: S104 - in the test's namespace
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.root, args.address, args.port, args.log)


if __name__ == "__main__":
    main(sys.argv[1:])

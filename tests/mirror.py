"""A local HTTP server on 127.0.0.1 laid out like the mirrors newton-aio fetches from (the
CentOS vault's ISO folder, install tree and repositories, the Cloud SIG's Newton repository,
an image host) or a Debian archive's debian-installer index, a libvirt test-driver host,
profiles that point at both, and the CLI on a host without routes."""
from __future__ import annotations

import contextlib
import hashlib
import io
import lzma
import os
import socket
import stat
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterable, Iterator

import pycdlib

from tests.lab_harness import Vmlab

ISO = "vault/7.9.2009/isos/x86_64/CentOS-7-x86_64-Minimal-2009.iso"
ISO_BYTES = 1 << 30  # a sparse file: the size of a real minimal ISO, no room taken
ISO_SHA256 = "ab" * 32  # the mirror's sha256sum.txt and the profile agree on it
TREE = "vault/7.9.2009/os/x86_64/"
REPOS = ("vault/7.9.2009/os/x86_64/", "vault/7.9.2009/updates/x86_64/",
         "vault/7.9.2009/extras/x86_64/", "vault/7.3.1611/extras/x86_64/",
         "vault/7.4.1708/cloud/x86_64/openstack-newton/")
IMAGE = "images/cirros-0.3.4-x86_64-disk.img"
TREEINFO = "[general]\nfamily = CentOS\nversion = 7\narch = x86_64\n"
REPOMD = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          '<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>1</revision>'
          '</repomd>\n')


class _Quiet(SimpleHTTPRequestHandler):
    #: paths answered with 405 to HEAD, as some download servers do
    refuse_head: set[str] = set()
    #: path -> how many more requests for it get a 503, as from a busy mirror
    busy: dict[str, int] = {}

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _busy(self) -> bool:
        if self.busy.get(self.path, 0) > 0:
            self.busy[self.path] -= 1
            self.send_error(503)
            return True
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if not self._busy():
            super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        if self._busy():
            return
        if self.path in self.refuse_head:
            self.send_error(405)
            return
        super().do_HEAD()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        return None  # a client that hangs up after the headers (a size check) is fine


@dataclass
class Mirror:
    root: Path
    port: int
    refuse_head: set[str] = field(default_factory=set)
    busy: dict[str, int] = field(default_factory=dict)

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def put(self, path: str, data: bytes = b"", size: int | None = None) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if size is not None:
            with target.open("r+b") as handle:
                handle.truncate(size)
        return target

    def remove(self, path: str) -> None:
        (self.root / path).unlink()


@contextlib.contextmanager
def serve(root: Path) -> Iterator[Mirror]:
    root.mkdir(parents=True, exist_ok=True)
    refuse_head: set[str] = set()
    busy: dict[str, int] = {}
    handler = type("Handler", (_Quiet,), {"refuse_head": refuse_head, "busy": busy})
    server = _Server(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Mirror(root, server.server_address[1], refuse_head, busy)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def lay_out(mirror: Mirror) -> None:
    """Everything newton-aio fetches, present and well formed."""
    mirror.put(ISO, size=ISO_BYTES)
    mirror.put(ISO.rsplit("/", 1)[0] + "/sha256sum.txt",
               f"{ISO_SHA256}  CentOS-7-x86_64-Minimal-2009.iso\n".encode())
    mirror.put(TREE + ".treeinfo", TREEINFO.encode())
    for repo in REPOS:
        mirror.put(repo + "repodata/repomd.xml", REPOMD.encode())
    mirror.put(IMAGE, size=13 << 20)


def udeb_mirror(mirror: Mirror, served: Iterable[str], kernels: Iterable[str] = (),
                suite: str = "bookworm", kernels_served: bool = True) -> None:
    """A Debian archive under ``debian/`` whose debian-installer index lists the udebs every
    netboot install loads (the pool serving those in ``served``) and, for each kernel
    release in ``kernels``, its kernel-image and ext4-modules udebs (served unless
    ``kernels_served`` is false)."""
    from vmlab.preflight.installer import ALWAYS_LOADED

    stanzas = []
    for name in ALWAYS_LOADED:
        path = f"pool/main/{name[0]}/{name}/{name}_1.0_all.udeb"
        stanzas.append(f"Package: {name}\nVersion: 1.0\nFilename: {path}\nSize: 4\n")
        if name in served:
            mirror.put(f"debian/{path}", b"udeb")
    for release in kernels:
        for name in (f"kernel-image-{release}-di", f"ext4-modules-{release}-di"):
            path = f"pool/main/l/linux-signed-amd64/{name}_1.0_amd64.udeb"
            stanzas.append(f"Package: {name}\nSource: linux-signed-amd64\nVersion: 1.0\n"
                           f"Filename: {path}\nSize: 4\n")
            if kernels_served:
                mirror.put(f"debian/{path}", b"udeb")
    mirror.put(f"debian/dists/{suite}/main/debian-installer/binary-amd64/Packages.xz",
               lzma.compress("\n".join(stanzas).encode()))


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def routeless_cli(tmp_path: Path, home: dict[str, str]) -> Vmlab:
    """The CLI with its own state and cache in ``tmp_path``, on a host whose routes a
    stand-in `ip` gives (none)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    ip = bindir / "ip"
    ip.write_text(f"#!{sys.executable}\nprint('[]')\n")
    ip.chmod(ip.stat().st_mode | stat.S_IXUSR)
    return Vmlab({**home, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
                  "XDG_STATE_HOME": str(tmp_path / "state"),
                  "XDG_CACHE_HOME": str(tmp_path / "cache")})


def host_xml(path: Path, *, memory_mib: int = 8192, cpus: int = 4,
             networks: str = "") -> Path:
    """A libvirt test-driver host (``test://<path>``): its memory, CPUs and networks."""
    path.write_text(textwrap.dedent(f"""\
        <node>
          <cpu><mhz>2000</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>
            <cores>{cpus}</cores><threads>1</threads><active>{cpus}</active></cpu>
          <memory>{memory_mib * 1024}</memory>
        """) + networks + "</node>\n")
    return path


DEFAULT_NETWORK = """\
  <network>
    <name>default</name>
    <bridge name="virbr0"/>
    <forward mode="nat"/>
    <ip address="192.168.122.1" netmask="255.255.255.0">
      <dhcp><range start="192.168.122.2" end="192.168.122.254"/></dhcp>
    </ip>
  </network>
"""


def newton_profile(path: Path, mirror: Mirror, uri: str, *, provider: str = "10.91.0.0/24",
                   provider_name: str = "vmlab-provider", iso_sha256: str = ISO_SHA256,
                   serve_on: str | None = None, extra: str = "") -> Path:
    """newton-aio fetching everything from ``mirror``, on the libvirt at ``uri``."""
    path.write_text(textwrap.dedent(f"""\
        extends: newton-aio
        name: {path.stem}
        hypervisor: {{kind: libvirt, uri: "{uri}"}}
        install:
          iso_url: {mirror.url(ISO)}
          iso_sha256: {iso_sha256}
          install_url: {mirror.url(TREE)}
          serve_on: {serve_on or "null"}
        vm:
          nics:
            - {{role: provider, network: nat, network_name: {provider_name},
                subnet: {provider}}}
            - {{role: management, network: isolated, network_name: vmlab-management,
                subnet: 192.168.70.0/24, address: 192.168.70.2}}
        openstack:
          mirror: custom
          mirror_url: {mirror.url("vault/7.9.2009")}
          release_repo_url: {mirror.url("vault/7.3.1611/extras/$basearch/")}
          openstack_repo_url: {mirror.url("vault/7.4.1708/cloud/$basearch/openstack-newton/")}
          image_url: {mirror.url(IMAGE)}
        """) + extra)
    return path


def boot_iso(path: Path) -> tuple[Path, str]:
    """A small ISO with the installer's boot files where vmlab reads them, and its sha256."""
    image = pycdlib.PyCdlib()
    image.new(interchange_level=3, vol_ident="CentOS 7 x86_64", rock_ridge="1.09")
    image.add_directory("/IMAGES", rr_name="images")
    image.add_directory("/IMAGES/PXEBOOT", rr_name="pxeboot")
    for name in ("vmlinuz", "initrd.img"):
        data = f"fake {name}\n".encode()
        image.add_fp(io.BytesIO(data), len(data),
                     f"/IMAGES/PXEBOOT/{name.upper().replace('.', '')[:8]}.;1",
                     rr_name=name)
    image.write(str(path))
    image.close()
    return path, hashlib.sha256(path.read_bytes()).hexdigest()

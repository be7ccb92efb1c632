"""The installer archive the Debian 13 install test builds (tests/installer_archive.py): a
udeb rebuilt from regular packages holds what Debian's udeb holds, and the initrd with the
test's key added still boots the same kernel and carries Debian's keys and the test's."""
from __future__ import annotations

import gzip
import hashlib
import subprocess
from pathlib import Path

import pytest

from tests import installer_archive
from vmlab.netboot import initrd_kernel_version
from vmlab.profileinstall import PreseedInstall

#: what debian-installer-12-netboot-amd64 installs (`make deps`)
DEBIAN12_INITRD = PreseedInstall(method="preseed").netboot_folder / "initrd.gz"


def regular_deb(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp_path / f"{name}-root"
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: t <t@example.org>\n"
        "Description: test\n")
    deb = tmp_path / "cache" / "debs" / f"{name}_1.0-1_amd64.deb"
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)],
                   check=True, stdout=subprocess.DEVNULL)
    return deb


UDEB = {"Package": "foo-udeb", "Source": "foo", "Version": "1.0-1", "Architecture": "amd64",
        "Maintainer": "t <t@example.org>", "Depends": "libc6-udeb (>= 2.41)",
        "Description": "foo for the installer", "Section": "debian-installer",
        "Filename": "pool/main/f/foo/foo-udeb_1.0-1_amd64.udeb", "Size": "1",
        "SHA256": "0" * 64}


def test_a_udeb_is_rebuilt_from_its_sources_regular_packages_at_the_udebs_paths(tmp_path):
    regular_deb(tmp_path, "foo", {"usr/sbin/foo": b"the tool\n"})
    regular_deb(tmp_path, "libfoo1", {"usr/lib/x86_64-linux-gnu/libfoo.so.1": b"library\n"})
    regular = [{"Package": "libfoo1", "Version": "1.0-1",
                "Filename": "pool/main/f/foo/libfoo1_1.0-1_amd64.deb"},
               {"Package": "foo", "Version": "1.0-1",
                "Filename": "pool/main/f/foo/foo_1.0-1_amd64.deb"}]
    out = tmp_path / "foo-udeb.udeb"
    paths = ["usr/sbin/foo", "usr/lib/libfoo.so.1", "usr/share/lintian/overrides/foo-udeb"]

    assert installer_archive.rebuild_udeb(UDEB, paths, regular, tmp_path / "cache", out)

    listing = subprocess.run(["dpkg-deb", "-c", str(out)], capture_output=True, text=True,
                             check=True).stdout
    assert "./usr/sbin/foo" in listing and "./usr/lib/libfoo.so.1" in listing
    assert "lintian" not in listing
    control = subprocess.run(["dpkg-deb", "-f", str(out)], capture_output=True, text=True,
                             check=True).stdout
    assert "Package: foo-udeb" in control and "Depends: libc6-udeb (>= 2.41)" in control
    assert "Filename" not in control and "SHA256" not in control
    listed = installer_archive._with_file(UDEB, out)
    assert listed["SHA256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert listed["Size"] == str(out.stat().st_size)
    assert listed["Filename"] == UDEB["Filename"]


def test_a_udeb_whose_files_the_regular_packages_lack_is_not_rebuilt(tmp_path):
    regular_deb(tmp_path, "foo", {"usr/sbin/foo": b"the tool\n"})
    regular = [{"Package": "foo", "Version": "1.0-1",
                "Filename": "pool/main/f/foo/foo_1.0-1_amd64.deb"}]
    out = tmp_path / "foo-udeb.udeb"
    assert not installer_archive.rebuild_udeb(
        UDEB, ["usr/sbin/foo", "usr/sbin/foo-only-in-the-udeb"], regular,
        tmp_path / "cache", out)
    assert not out.exists()


def test_a_newer_regular_build_stands_in_when_the_udebs_own_is_gone():
    regular = [{"Package": "libssl3t64", "Version": "3.5.9-1~deb13u1"},
               {"Package": "openssl", "Version": "3.5.9-1~deb13u1"},
               {"Package": "libssl3t64", "Version": "3.5.10-1~deb13u1"}]
    chosen = installer_archive._same_build({"Version": "3.5.7-1~deb13u2"}, regular)
    assert [p["Version"] for p in chosen] == ["3.5.10-1~deb13u1"]
    exact = installer_archive._same_build({"Version": "3.5.9-1~deb13u1"}, regular)
    assert [p["Package"] for p in exact] == ["libssl3t64", "openssl"]


def test_the_initrd_with_the_tests_key_boots_the_same_kernel_and_carries_both_keyrings(
        tmp_path):
    if not DEBIAN12_INITRD.is_file():
        pytest.fail("debian-installer-12-netboot-amd64 is not installed: run `make deps`")
    cache = tmp_path / "cache"
    public = installer_archive.public_key(cache)
    out = tmp_path / "initrd.gz"

    installer_archive.initrd_with_key(DEBIAN12_INITRD, public, out)

    original = DEBIAN12_INITRD.read_bytes()
    assert out.read_bytes().startswith(original)
    assert initrd_kernel_version(out) == initrd_kernel_version(DEBIAN12_INITRD)
    appended = tmp_path / "appended"
    appended.mkdir()
    subprocess.run(["cpio", "-i", "--quiet", "-d"], input=gzip.decompress(
        out.read_bytes()[len(original):]), cwd=appended, check=True)
    keyring = (appended / "usr/share/keyrings/archive.gpg").read_bytes()
    assert keyring.endswith(public) and len(keyring) > len(public)
    # a Release signed with the test's key verifies against the installer's keyring
    release = tmp_path / "Release"
    release.write_text("Codename: trixie\n")
    installer_archive.sign(cache, release, tmp_path / "Release.gpg")
    (tmp_path / "archive.gpg").write_bytes(keyring)
    verified = subprocess.run(["gpgv", "--keyring", str(tmp_path / "archive.gpg"),
                               str(tmp_path / "Release.gpg"), str(release)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    assert oct((cache / "signing-key.sec").stat().st_mode & 0o777) == "0o600"

"""The preflight check that debian-installer's netboot kernel has kernel modules on the
mirror: the release is read from initrds built here (newc cpio records written by hand,
gzip'd or not, one archive or several) and from Debian's own netboot initrd, and compared
with a debian-installer index served on 127.0.0.1. A mismatch would stop the real installer
at "No kernel modules were found"; preflight names both sides instead."""
from __future__ import annotations

import gzip
import json
import re
import textwrap
from pathlib import Path

import pytest

from tests.mirror import host_xml, routeless_cli, serve, udeb_mirror
from vmlab.errors import InfrastructureError
from vmlab.netboot import initrd_kernel_version
from vmlab.profileinstall import PreseedInstall
from vmlab.preflight.installer import ALWAYS_LOADED, KERNEL_CHECK

#: What the debian-installer-12-netboot-amd64 package installs (scripts/install-deps)
#: what debian-installer-12-netboot-amd64 installs (`make deps`)
DEBIAN_INITRD = PreseedInstall(method="preseed").netboot_folder / "initrd.gz"
NETBOOT = "6.1.0-50-amd64"
DIRECTORY, FILE = 0o040755, 0o100644


# -- initrds, written here ----------------------------------------------------------------

def newc(*entries: tuple[str, int, bytes]) -> bytes:
    """A newc cpio archive of (name, mode, data) entries, ending with its trailer record and
    padded to 512 bytes as the kernel's own tools do."""
    out = bytearray()
    for inode, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], 1):
        encoded = name.encode() + b"\0"
        fields = (inode, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out += b"070701" + b"".join(b"%08X" % field for field in fields) + encoded
        out += b"\0" * (-len(out) % 4) + data
        out += b"\0" * (-len(out) % 4)
    return bytes(out + b"\0" * (-len(out) % 512))


def modules(release: str, prefix: str = "") -> bytes:
    """An archive with a kernel's modules, as debian-installer's initrd holds them."""
    return newc((f"{prefix}lib", DIRECTORY, b""), (f"{prefix}lib/modules", DIRECTORY, b""),
                (f"{prefix}lib/modules/{release}", DIRECTORY, b""),
                (f"{prefix}lib/modules/{release}/kernel/fs/ext4/ext4.ko", FILE, b"\x7fELF"),
                (f"{prefix}lib/modules/{release}/modules.dep", FILE, b"ext4.ko:\n"))


def early_microcode() -> bytes:
    """An archive without modules, as the early (microcode) archive in front of an
    initramfs; the script mentions lib/modules in its contents, not in a name."""
    return newc(("kernel", DIRECTORY, b""), ("kernel/x86/microcode", DIRECTORY, b""),
                ("kernel/x86/microcode/GenuineIntel.bin", FILE, b"\x01" * 37),
                ("init", FILE, b"#!/bin/sh\nls /lib/modules/$(uname -r)\n"))


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def initrd(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "netboot" / "initrd.gz"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    (path.parent / "linux").write_bytes(b"kernel")
    return path


def test_the_release_is_the_one_folder_under_lib_modules_of_a_gzipd_initrd(tmp_path):
    assert initrd_kernel_version(initrd(tmp_path, gz(modules(NETBOOT)))) == NETBOOT


def test_names_with_a_leading_dot_slash_and_an_uncompressed_cpio_are_read(tmp_path):
    assert initrd_kernel_version(initrd(tmp_path, modules(NETBOOT, "./"))) == NETBOOT


@pytest.mark.parametrize("data", [
    gz(early_microcode() + modules(NETBOOT)),
    gz(early_microcode()) + gz(modules(NETBOOT)),
    early_microcode() + gz(modules(NETBOOT)),
], ids=["two archives in one gzip member", "two concatenated gzip members",
        "an uncompressed archive, then a gzip'd one"])
def test_every_archive_of_a_concatenated_initramfs_is_read(tmp_path, data):
    assert initrd_kernel_version(initrd(tmp_path, data)) == NETBOOT


def test_an_initrd_without_kernel_modules_is_a_clear_error(tmp_path):
    path = initrd(tmp_path, gz(early_microcode()))
    with pytest.raises(InfrastructureError) as info:
        initrd_kernel_version(path)
    assert info.value.message == (
        f"{path} is not a debian-installer initrd vmlab can read: it should hold the modules "
        "of one kernel under lib/modules/<release>/, it holds none")
    assert "install.netboot_dir" in info.value.hint


def test_an_initrd_with_two_kernels_names_both(tmp_path):
    path = initrd(tmp_path, gz(modules("6.1.0-49-amd64") + modules(NETBOOT)))
    with pytest.raises(InfrastructureError, match=f"it holds 6.1.0-49-amd64, {NETBOOT}$"):
        initrd_kernel_version(path)


@pytest.mark.parametrize("data, why", [
    (b"initrd", r"it is not a gzip-compressed or uncompressed newc cpio archive \(it "
                r"starts with b'initrd'\)"),
    (gz(b"<html>not found</html>"), "it is not a newc cpio archive"),
    (gz(modules(NETBOOT))[:-12], "cannot read it: Compressed file ended"),
    (modules(NETBOOT)[:300], "a cpio header is cut off or damaged|the archive ends inside"),
    (b"", "it holds none"),
], ids=["not an archive", "gzip'd, not a cpio", "cut-off gzip", "cut-off cpio", "empty"])
def test_a_file_that_is_no_initrd_is_a_clear_error(tmp_path, data, why):
    with pytest.raises(InfrastructureError, match=why):
        initrd_kernel_version(initrd(tmp_path, data))


def test_the_kernel_of_debians_own_netboot_initrd_is_read():
    if not DEBIAN_INITRD.is_file():
        pytest.fail("debian-installer-12-netboot-amd64 is not installed: run `make deps`")
    assert re.fullmatch(r"6\.1\.0-\d+-amd64", initrd_kernel_version(DEBIAN_INITRD))


# -- the preflight, through the CLI -------------------------------------------------------

@pytest.fixture
def cli(tmp_path, vmlab_home):
    return routeless_cli(tmp_path, vmlab_home)


@pytest.fixture
def mirror(tmp_path):
    with serve(tmp_path / "mirror") as running:
        for suite in ("bookworm", "bookworm-updates"):
            running.put(f"debian/dists/{suite}/Release", f"Suite: {suite}\n".encode())
        running.put("debian-security/dists/bookworm-security/Release",
                    b"Suite: bookworm-security\n")
        yield running


def preseed_profile(tmp_path: Path, mirror, netboot: Path) -> Path:
    """The Debian twin installed by debian-installer from ``netboot`` and ``mirror``, on
    libvirt's test driver; no stages, so nothing but the mirror is asked."""
    path = tmp_path / "kernel.yaml"
    path.write_text(textwrap.dedent(f"""\
        extends: zed-aio-debian12-preseed
        name: kernel
        hypervisor: {{kind: libvirt, uri: "test://{host_xml(tmp_path / 'host.xml')}"}}
        install:
          netboot_dir: {netboot}
          mirror_host: 127.0.0.1:{mirror.port}
          mirror_directory: /debian
        vm:
          nics:
            - {{role: provider, network: nat, network_name: vmlab-provider,
                subnet: 10.91.0.0/24}}
            - {{role: management, network: isolated, network_name: vmlab-management,
                subnet: 192.168.70.0/24, address: 192.168.70.2}}
        stages: []
        """))
    return path


def preflight(cli, profile: Path) -> dict[str, dict]:
    report = json.loads(cli("preflight", "--profile", str(profile), "--json",
                            expect=None).stdout)
    return {check["name"]: check for check in report["checks"]}


def test_a_netboot_kernel_the_mirror_has_modules_for_passes(cli, mirror, tmp_path):
    netboot = initrd(tmp_path, gz(modules(NETBOOT))).parent
    udeb_mirror(mirror, ALWAYS_LOADED, kernels=("6.1.0-49-amd64", NETBOOT))
    checks = preflight(cli, preseed_profile(tmp_path, mirror, netboot))
    assert checks["debian-installer's components"]["status"] == "ok"
    assert checks[KERNEL_CHECK] == {
        "area": "urls", "name": KERNEL_CHECK, "status": "ok", "fix": "",
        "detail": f"{mirror.url('debian')}: serves kernel modules for the netboot kernel "
                  f"{NETBOOT}"}


def test_a_netboot_kernel_of_another_point_release_fails_naming_both(cli, mirror, tmp_path):
    netboot = initrd(tmp_path, gz(modules(NETBOOT))).parent
    udeb_mirror(mirror, ALWAYS_LOADED, kernels=("6.1.0-41-amd64", "6.1.0-9-amd64"))
    profile = preseed_profile(tmp_path, mirror, netboot)
    check = preflight(cli, profile)[KERNEL_CHECK]
    index = mirror.url("debian/dists/bookworm/main/debian-installer/binary-amd64/Packages.xz")
    assert check["status"] == "fail"
    assert check["detail"] == (
        f"{index} lists kernel modules for 6.1.0-9-amd64, 6.1.0-41-amd64, not for {NETBOOT}, "
        f"the kernel of {netboot / 'initrd.gz'}: the installer would stop at 'No kernel "
        "modules were found'")
    assert check["fix"] == (
        "use netboot images from the same point release as the mirror: update "
        "debian-installer-12-netboot-amd64 (`apt-get install --only-upgrade "
        "debian-installer-12-netboot-amd64`), or set install.netboot_dir to images whose "
        "kernel the mirror lists and serves")
    table = cli("preflight", "--profile", str(profile), expect=1).stdout
    assert f"  FAIL  {KERNEL_CHECK}" in table and "No kernel modules were found" in table


def test_kernel_modules_the_mirror_lists_but_does_not_serve_fail(cli, mirror, tmp_path):
    netboot = initrd(tmp_path, gz(modules(NETBOOT))).parent
    udeb_mirror(mirror, ALWAYS_LOADED, kernels=(NETBOOT,), kernels_served=False)
    check = preflight(cli, preseed_profile(tmp_path, mirror, netboot))[KERNEL_CHECK]
    assert check["status"] == "fail"
    assert check["detail"].startswith(
        f"{mirror.url('debian')} lists kernel modules for the netboot kernel {NETBOOT} but does "
        f"not serve them (pool/main/l/linux-signed-amd64/kernel-image-{NETBOOT}-di_1.0_amd64"
        ".udeb (HTTP 404), ")
    assert "No kernel modules were found" in check["detail"]


def test_an_unreadable_initrd_fails_the_kernel_check_with_its_hint(cli, mirror, tmp_path):
    netboot = initrd(tmp_path, b"initrd").parent
    udeb_mirror(mirror, ALWAYS_LOADED, kernels=(NETBOOT,))
    check = preflight(cli, preseed_profile(tmp_path, mirror, netboot))[KERNEL_CHECK]
    assert check["status"] == "fail" and "is not a debian-installer initrd" in check["detail"]
    assert "install.netboot_dir" in check["fix"]

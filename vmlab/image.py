"""Debian guest images built from packages, generic and cached by a key of their inputs.

The image is the same for every lab: what makes a guest one lab's (its SSH key, hostname,
static addresses, DNS) reaches it at boot as small named strings (``seed_entries``), which
the libvirt driver passes through qemu's fw_cfg. A unit baked into the image,
``vmlab-seed.service``, applies them on every boot before networking and sshd start, and
generates the guest's own SSH host keys on its first boot.

Recipe: mmdebstrap (minbase + systemd, sshd, a kernel, ifupdown), a few files, then
``mke2fs -d`` into an ext4 file system without a partition table, converted to qcow2. The
kernel and initrd are copied out for direct kernel boot.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import filelock

from vmlab.errors import InfrastructureError
from vmlab.iso import file_sha256

#: Bump when the recipe below changes, so cached images are rebuilt.
RECIPE_VERSION = 6
#: isc-dhcp-client: ifupdown's `inet dhcp` for a NIC on a libvirt NAT network (its dnsmasq)
BASE_PACKAGES = ("systemd-sysv", "openssh-server", "linux-image-cloud-amd64", "ifupdown",
                 "iproute2", "ca-certificates", "procps", "netbase", "less", "kmod",
                 "isc-dhcp-client")
ROOT_LABEL = "vmlab-root"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SEED_DIR = "/sys/firmware/qemu_fw_cfg/by_name/opt/vmlab"


@dataclass(frozen=True)
class ImageSpec:
    suite: str = "bookworm"
    packages: tuple[str, ...] = ()
    size_gib: int = 4
    mirror: str | None = None


@dataclass(frozen=True)
class BuiltImage:
    disk: Path
    kernel: Path
    initrd: Path
    cmdline: str
    #: sha256 of the disk's content: an uploaded copy with this key is this image.
    key: str


def image_key(spec: ImageSpec) -> str:
    recipe = {"recipe": RECIPE_VERSION, "base": BASE_PACKAGES, **asdict(spec),
              "packages": sorted(spec.packages)}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def kernel_cmdline() -> str:
    return f"root=LABEL={ROOT_LABEL} rw console=ttyS0,115200 panic=10"


def build_image(spec: ImageSpec, cache_dir: Path,
                progress: Callable[[str], None] = lambda _: None) -> BuiltImage:
    """The cached image for ``spec``, built first if needed (one builder at a time)."""
    key = image_key(spec)
    final = cache_dir / key[:16]
    cache_dir.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(cache_dir / f"{key[:16]}.lock")):
        if not (final / "disk.qcow2").is_file():
            _build(spec, cache_dir, final, progress)
        else:
            progress("cached")
    return BuiltImage(disk=final / "disk.qcow2", kernel=final / "vmlinuz",
                      initrd=final / "initrd.img", cmdline=kernel_cmdline(),
                      key=(final / "disk.sha256").read_text().split()[0])


def _build(spec: ImageSpec, cache_dir: Path, final: Path,
           progress: Callable[[str], None]) -> None:
    for tool in ("mmdebstrap", "mke2fs", "qemu-img"):
        if shutil.which(tool) is None:
            raise InfrastructureError(f"{tool} is not installed; it builds the guest image",
                                      hint="install mmdebstrap, e2fsprogs and qemu-utils "
                                           "(`make deps` does)")
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    try:
        root = work / "root"
        packages = ",".join(BASE_PACKAGES + tuple(spec.packages))
        progress(f"debootstrapping {spec.suite} from packages")
        _run(["mmdebstrap", "--variant=minbase", f"--include={packages}", spec.suite,
              str(root), spec.mirror or DEFAULT_MIRROR], "mmdebstrap")
        progress("configuring the image")
        _customise(root, spec)
        out = work / "out"
        out.mkdir()
        shutil.copyfile(_newest(root / "boot", "vmlinuz-*"), out / "vmlinuz")
        shutil.copyfile(_newest(root / "boot", "initrd.img-*"), out / "initrd.img")
        progress(f"making a {spec.size_gib} GiB file system")
        raw = work / "disk.raw"
        _run(["mke2fs", "-q", "-t", "ext4", "-L", ROOT_LABEL, "-d", str(root), str(raw),
              f"{spec.size_gib}G"], "mke2fs")
        progress("converting to qcow2")
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(out / "disk.qcow2")],
             "qemu-img convert")
        (out / "disk.sha256").write_text(file_sha256(out / "disk.qcow2") + "  disk.qcow2\n")
        os.replace(out, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _newest(directory: Path, pattern: str) -> Path:
    found = sorted(directory.glob(pattern))
    if not found:
        raise InfrastructureError(f"the image has no {pattern} in /boot",
                                  hint="the kernel package did not install; see the build log")
    return found[-1]


def _run(argv: list[str], what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise InfrastructureError(f"{what} failed (exit {result.returncode}):\n{tail}",
                                  hint="the guest image is built from Debian's packages: "
                                       "check that the mirror is reachable")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _customise(root: Path, spec: ImageSpec) -> None:
    mirror = spec.mirror or DEFAULT_MIRROR
    _write(root / "etc/fstab", f"LABEL={ROOT_LABEL} / ext4 errors=remount-ro 0 1\n")
    _write(root / "etc/hostname", "localhost\n")
    _write(root / "etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n")
    _write(root / "etc/apt/sources.list",
           f"deb {mirror} {spec.suite} main\ndeb {mirror} {spec.suite}-updates main\n"
           f"deb {mirror}-security {spec.suite}-security main\n")
    _write(root / "etc/network/interfaces",
           "auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n")
    # Every lab gets its own machine id and SSH host keys on its first boot.
    _write(root / "etc/machine-id", "")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    _write(root / "etc/ssh/sshd_config.d/vmlab.conf",
           "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n")
    _write(root / "usr/local/sbin/vmlab-seed", SEED_SCRIPT, mode=0o755)
    _write(root / "etc/systemd/system/vmlab-seed.service", SEED_UNIT)
    _write(root / "etc/dhcp/dhclient-enter-hooks.d/vmlab-seed-dns", DHCLIENT_KEEP_DNS)
    wants = root / "etc/systemd/system/sysinit.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    (wants / "vmlab-seed.service").symlink_to("/etc/systemd/system/vmlab-seed.service")
    # Nothing should compete with the stages for apt's lock or for the CPU at boot.
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                 "fstrim.timer", "man-db.timer", "systemd-networkd-wait-online.service"):
        (root / "etc/systemd/system" / unit).unlink(missing_ok=True)
        (root / "etc/systemd/system" / unit).symlink_to("/dev/null")
    # A lab's consistency points are vmlab's snapshots (taken shut off, or with the RAM),
    # so dpkg may skip its per-file fsync, as Debian's container images do; apt skips the
    # translations no stage reads. Under TCG both are minutes over an OpenStack deployment.
    _write(root / "etc/dpkg/dpkg.cfg.d/vmlab-unsafe-io", "force-unsafe-io\n")
    _write(root / "etc/apt/apt.conf.d/90vmlab-no-translations", 'Acquire::Languages "none";\n')
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for item in (root / cache).glob("*.deb"):
            item.unlink()


def seed_entries(*, authorized_keys: str, hostname: str,
                 nics: list[tuple[str, str, int, str | None]],
                 dns: list[str], dhcp: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """The (name, value) pairs a guest built by this module reads at boot.

    ``nics``: (mac, address, prefix, gateway or None) for each NIC with a static address;
    ``dhcp``: the MACs of the NICs that take their address from DHCP.
    """
    lines = [f"{mac.lower()} {address}/{prefix}" + (f" {gateway}" if gateway else "")
             for mac, address, prefix, gateway in nics]
    lines += [f"{mac.lower()} dhcp" for mac in dhcp]
    network = "\n".join(lines)
    entries = (("authorized_keys", authorized_keys.strip() + "\n"),
               ("hostname", hostname),
               ("network", network + "\n"))
    # no servers (they come from DHCP): no entry, so the guest's resolv.conf is left alone
    return entries + ((("dns", "".join(f"nameserver {server}\n" for server in dns)),)
                      if dns else ())


SEED_UNIT = """\
[Unit]
Description=Apply vmlab's per-lab seed (SSH key, hostname, network) from fw_cfg
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service systemd-udev-trigger.service
Before=network-pre.target networking.service ssh.service sysinit.target
Wants=network-pre.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/vmlab-seed
RemainAfterExit=yes

[Install]
WantedBy=sysinit.target
"""

SEED_SCRIPT = r"""#!/bin/sh
# Applies vmlab's per-lab seed on every boot; written by vmlab's image builder.
set -u
seed=""" + SEED_DIR + r"""
modprobe qemu_fw_cfg 2>/dev/null || true
value() { [ -r "$seed/$1/raw" ] && cat "$seed/$1/raw"; }

if keys=$(value authorized_keys); then
    install -d -m 0700 /root/.ssh
    printf '%s\n' "$keys" > /root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
fi
if name=$(value hostname); then
    printf '%s\n' "$name" > /etc/hostname
    hostname "$name"
fi
if dns=$(value dns); then
    rm -f /etc/resolv.conf
    printf '%s\n' "$dns" > /etc/resolv.conf
fi
if network=$(value network); then
    out=/etc/network/interfaces.d/vmlab
    mkdir -p /etc/network/interfaces.d
    echo "# Written at boot by vmlab-seed: NICs matched by MAC address." > "$out.new"
    printf '%s\n' "$network" | while read -r mac cidr gateway; do
        [ -n "$mac" ] || continue
        iface=""
        for _ in $(seq 100); do   # the NIC's driver may still be loading
            iface=$(grep -l -x "$mac" /sys/class/net/*/address 2>/dev/null | head -n 1)
            [ -n "$iface" ] && break
            sleep 0.1
        done
        [ -n "$iface" ] || { echo "vmlab-seed: no NIC with MAC $mac" >&2; continue; }
        iface=$(basename "$(dirname "$iface")")
        if [ "$cidr" = dhcp ]; then
            printf '\nauto %s\niface %s inet dhcp\n' "$iface" "$iface" >> "$out.new"
            continue
        fi
        printf '\nauto %s\niface %s inet static\n    address %s\n' \
            "$iface" "$iface" "$cidr" >> "$out.new"
        if [ -n "$gateway" ]; then printf '    gateway %s\n' "$gateway" >> "$out.new"; fi
    done
    mv "$out.new" "$out"
fi
ssh-keygen -A >/dev/null
exit 0
"""

# dhclient-script(8): an enter hook that defines make_resolv_conf replaces the function that
# writes the lease's name servers to /etc/resolv.conf. With a `dns` seed entry (the profile's
# or the provider network's resolver) the seed's resolv.conf stays, renewals included.
DHCLIENT_KEEP_DNS = """\
# Written by vmlab's image builder: keep the name servers vmlab-seed wrote.
if [ -r """ + SEED_DIR + """/dns/raw ]; then
    make_resolv_conf() { :; }
fi
"""

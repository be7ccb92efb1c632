"""How a lab's OS gets onto its disk: an `image` built from packages, a `kickstart` install
from the distribution's ISO, or a `preseed` install with debian-installer's netboot kernel
(virt-install's pattern for both installers: an install boot with the installer's kernel and
its answer file's URL, then the final definition that boots from disk)."""
from __future__ import annotations

import contextlib
import errno
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from vmlab import drivers, paths
from vmlab.dns import guest_dns
from vmlab.drivers.base import DiskSpec, Driver, KernelBoot, PowerState, VMRef
from vmlab.drivers.kinds import DriverKind
from vmlab.errors import InfrastructureError, WaitTimeout
from vmlab.profile import ImageInstall, KickstartInstall, LoadedProfile, PreseedInstall
from vmlab.progress import Progress
from vmlab.vmspec import dhcp_macs, network_spec, static_addresses

if TYPE_CHECKING:
    from vmlab.installserver import InstallServer

#: The install server listens on the first free port of this fixed range, so that a
#: firewall can let it through once and for all (`vmlab preflight` checks that it does).
INSTALL_PORTS = range(8719, 8729)


@dataclass
class Prepared:
    """What the driver needs to create the VM, and what to do once it exists."""

    disk: DiskSpec
    boot: KernelBoot | None = None
    guest_data: tuple[tuple[str, str], ...] = ()
    cdroms: tuple[Path, ...] = ()
    guest_os: str = "linux"
    #: The installer's install settings (its timeout), when an installer runs at first boot.
    installer: KickstartInstall | PreseedInstall | None = None
    server: object | None = field(default=None, repr=False)

    @property
    def install_once(self) -> bool:
        """``boot`` and ``cdroms`` serve the install boot only (an installer runs)."""
        return self.installer is not None


def kickstart_inputs(lab: str, loaded: LoadedProfile, public_key: str, secrets: dict[str, str],
                     done_url: str | None, finish: str = "poweroff"):
    from vmlab.kickstart import KickstartInputs

    profile = loaded.profile
    install = profile.install
    assert isinstance(install, KickstartInstall)
    provider = profile.vm.nic("provider")
    management = profile.vm.nic("management") or provider
    assert provider is not None and management is not None and management.address is not None
    return KickstartInputs(
        lab=lab, hostname=profile.vm.hostname, provider_mac=provider.mac_for(lab),
        management_mac=management.mac_for(lab), management_address=str(management.address),
        management_prefix=management.prefix, root_password=secrets["root"],
        ssh_public_key=public_key, install_url=install.install_url, timezone=install.timezone,
        packages=tuple(install.packages), done_url=done_url,
        vmware_tools="open-vm-tools" in _kind(loaded).capabilities.guest_packages,
        finish=finish)


def _kind(loaded: LoadedProfile) -> DriverKind:
    """What the profile's hypervisor can do and how its networks reach this machine."""
    return drivers.kind(loaded.profile.hypervisor.kind)


@contextlib.contextmanager
def prepare(lab: str, loaded: LoadedProfile, public_key: str, secrets: dict[str, str],
            progress: Progress) -> Iterator[Prepared]:
    profile = loaded.profile
    install = profile.install
    if isinstance(install, ImageInstall):
        from vmlab.image import ImageSpec, build_image, seed_entries

        spec = ImageSpec(suite=install.suite, packages=tuple(install.packages),
                         size_gib=profile.vm.disk_gib, mirror=install.mirror)
        with progress.waiting("guest image") as update:
            built = build_image(spec, paths.cache_dir() / "images", progress=update)
        yield Prepared(
            disk=DiskSpec(size_gib=profile.vm.disk_gib, image=built.disk, image_key=built.key),
            boot=KernelBoot(built.kernel, built.initrd, built.cmdline),
            guest_data=seed_entries(authorized_keys=public_key, hostname=profile.vm.hostname,
                                    nics=static_addresses(lab, profile),
                                    dns=[str(ip) for ip in guest_dns(profile) or ()],
                                    dhcp=dhcp_macs(lab, profile)))
        return
    if isinstance(install, PreseedInstall):
        yield from _prepare_preseed(lab, loaded, install, public_key, secrets, progress)
        return
    assert isinstance(install, KickstartInstall)
    yield from _prepare_kickstart(lab, loaded, install, public_key, secrets, progress)


def _prepare_kickstart(lab: str, loaded: LoadedProfile, install: KickstartInstall,
                       public_key: str, secrets: dict[str, str],
                       progress: Progress) -> Iterator[Prepared]:
    from vmlab.iso import extract_boot_files, fetch_iso, install_boot_cmdline
    from vmlab.kickstart import render_kickstart, validate_kickstart

    profile = loaded.profile
    with progress.waiting("install ISO") as update:
        iso = fetch_iso(install.iso_url, install.iso_sha256, paths.cache_dir() / "isos", update)
    kernel, initrd = extract_boot_files(iso, paths.cache_dir() / "isos" / f"{iso.stem}-boot")
    # (read even for vSphere: a broken ISO is found before any VM is made)
    bind, url_host = _install_server_address(loaded, install)
    server = open_install_server(bind, url_host,
                                 log=lambda line: progress.step(f"install server: {line}"))
    text = render_kickstart(kickstart_inputs(lab, loaded, public_key, secrets, server.done_url),
                            template=install.template)
    validate_kickstart(text)  # before any VM boots: an invalid kickstart is an error
    server.files["ks.cfg"] = text.encode()
    if not _kind(loaded).capabilities.kernel_boot:
        # Without a kernel boot there are no kernel arguments to hand a stock ISO:
        # anaconda finds the kickstart on a second CD-ROM labelled OEMDRV instead.
        from vmlab.iso import make_oemdrv_iso

        oemdrv = make_oemdrv_iso(text, paths.cache_dir() / "isos" / f"{lab}-oemdrv.iso")
        with server:
            yield Prepared(disk=DiskSpec(size_gib=profile.vm.disk_gib), cdroms=(iso, oemdrv),
                           guest_os="centos7", installer=install, server=server)
        oemdrv.unlink(missing_ok=True)
        return
    label = install.iso_label.replace(" ", "\\x20")
    cmdline = install_boot_cmdline(ks_url=server.url_for("ks.cfg"), stage2=f"hd:LABEL={label}")
    with server:
        yield Prepared(disk=DiskSpec(size_gib=profile.vm.disk_gib),
                       boot=KernelBoot(kernel, initrd, cmdline), cdroms=(iso,),
                       guest_os="centos7", installer=install, server=server)


def preseed_inputs(lab: str, loaded: LoadedProfile, public_key: str, secrets: dict[str, str],
                   late_url: str, done_url: str | None):
    from vmlab.preseed import PreseedInputs, PreseedNic

    profile = loaded.profile
    install = profile.install
    assert isinstance(install, PreseedInstall)
    nics = tuple(PreseedNic(role=nic.role, mac=nic.mac_for(lab),
                            address=str(nic.address) if nic.address else None,
                            prefix=nic.prefix, gateway=str(nic.gateway) if nic.gateway else None)
                 for nic in profile.vm.nics)
    return PreseedInputs(
        lab=lab, hostname=profile.vm.hostname, nics=nics, root_password=secrets["root"],
        ssh_public_key=public_key.strip(), late_url=late_url, done_url=done_url,
        dns=tuple(str(ip) for ip in guest_dns(profile) or ()),
        mirror_host=install.mirror_host, mirror_directory=install.mirror_directory,
        suite=install.suite, timezone=install.timezone, packages=tuple(install.packages))


def preseed_boot_cmdline(*, preseed_url: str, interface_mac: str, hostname: str,
                         domain: str) -> str:
    """debian-installer's boot options (install guide, appendix B.2): fully automatic from
    the preseed at ``preseed_url``; what the installer asks before it has fetched the file
    (the NIC, the host name) is answered here; a serial console for the install and after.
    netcfg takes a MAC address for netcfg/choose_interface (netcfg-common.c,
    netcfg_get_interface), so the provider NIC is chosen whatever its name."""
    return " ".join([
        "auto=true", "priority=critical", f"url={preseed_url}",
        f"netcfg/choose_interface={interface_mac}", f"hostname={hostname}", f"domain={domain}",
        "locale=en_US.UTF-8", "keymap=us", "console=ttyS0,115200n8",
        # after "---": options the installed system's boot loader keeps too
        "---", "console=ttyS0,115200n8"])


def netboot_files(install: PreseedInstall) -> tuple[Path, Path]:
    """The installer's kernel and initrd, from Debian's netboot package."""
    folder = install.netboot_folder
    kernel, initrd = folder / "linux", folder / "initrd.gz"
    for path in (kernel, initrd):
        if not path.is_file():
            raise InfrastructureError(
                f"debian-installer's netboot {path.name} is not at {path}",
                hint=f"install Debian's {install.netboot_package} package "
                     f"(`apt-get install {install.netboot_package}`), or set "
                     "install.netboot_dir to the folder holding linux and initrd.gz")
    return kernel, initrd


def _prepare_preseed(lab: str, loaded: LoadedProfile, install: PreseedInstall,
                     public_key: str, secrets: dict[str, str],
                     progress: Progress) -> Iterator[Prepared]:
    from vmlab.preseed import render_preseed, validate_preseed

    profile = loaded.profile
    kernel, initrd = netboot_files(install)
    bind, url_host = _install_server_address(loaded, install)
    server = open_install_server(bind, url_host,
                                 log=lambda line: progress.step(f"install server: {line}"))
    rendered = render_preseed(preseed_inputs(lab, loaded, public_key, secrets,
                                             server.url_for("late.sh"), server.done_url),
                              template=install.template)
    validate_preseed(rendered)  # before any VM boots: an invalid preseed is an error
    server.files["preseed.cfg"] = rendered.preseed.encode()
    server.files["late.sh"] = rendered.late_script.encode()
    provider = profile.vm.nic("provider")
    assert provider is not None
    cmdline = preseed_boot_cmdline(preseed_url=server.url_for("preseed.cfg"),
                                   interface_mac=provider.mac_for(lab),
                                   hostname=profile.vm.hostname, domain="localdomain")
    with server:
        yield Prepared(disk=DiskSpec(size_gib=profile.vm.disk_gib),
                       boot=KernelBoot(kernel, initrd, cmdline), installer=install,
                       server=server)


def _install_server_address(loaded: LoadedProfile,
                            install: KickstartInstall | PreseedInstall) -> tuple[str, str]:
    """(address to bind, address the guest uses) for the install server: ``serve_on``, or
    where the hypervisor's provider network shows this machine to the guest (the host's
    address on a bridged network, which exists once that network runs)."""
    if install.serve_on is not None:
        return str(install.serve_on), str(install.serve_on)
    provider = loaded.profile.vm.nic("provider")
    assert provider is not None
    return _kind(loaded).host_address(network_spec("", provider))


def open_install_server(bind: str, url_host: str,
                        log: Callable[[str], None] = lambda _: None) -> InstallServer:
    """The install server on the first free port of INSTALL_PORTS on ``bind``."""
    from vmlab.installserver import InstallServer

    for port in INSTALL_PORTS:
        try:
            return InstallServer(bind, {}, port=port, url_host=url_host, log=log)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                continue
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InfrastructureError(
                    f"the install server cannot listen on {bind}: no interface of this "
                    "machine has that address",
                    hint="vmlab starts a libvirt network before the server, so the network's "
                         "address exists then; otherwise set install.serve_on to an address "
                         "of this machine that the guest reaches") from exc
            raise InfrastructureError(f"the install server cannot listen on {bind}:{port}: "
                                      f"{exc.strerror or exc}") from exc
    raise InfrastructureError(
        f"every install server port ({INSTALL_PORTS[0]}-{INSTALL_PORTS[-1]}) on {bind} is "
        "in use", hint="other vmlab creates (or other programs) hold them: wait for them")


def first_free_port(bind: str) -> int:
    """The port open_install_server would take on ``bind`` now (the first of the range when
    the address does not exist yet)."""
    for port in INSTALL_PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((bind, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
            return port
    return INSTALL_PORTS[0]


def run_install(driver: Driver, ref: VMRef, prepared: Prepared, progress: Progress) -> None:
    """Start the VM; when an installer runs, its install boot, then (once the installer has
    called back and powered it off) its own definition, which boots from disk."""
    if prepared.installer is None:
        driver.start(ref)
        return
    driver.start_install(ref)
    what = prepared.installer.method
    timeout = prepared.installer.install_timeout_minutes * 60
    server = prepared.server
    with progress.waiting(f"installing the OS ({what})") as update:
        started = time.monotonic()
        deadline = started + timeout
        while not server.wait_done(10):  # type: ignore[union-attr]
            if driver.state(ref) == PowerState.SHUTOFF:
                raise InfrastructureError(
                    "the installer stopped before it reported success"
                    + _console_excerpt(driver, ref),
                    hint="read the console log (`vmlab status` shows where it is)")
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"the {what} install did not finish in {timeout // 60} min"
                    + _console_excerpt(driver, ref),
                    hint="read the console log; is the install source reachable?")
            last = console_tail(driver, ref, 1)
            update(f"{(time.monotonic() - started) / 60:.0f} min"
                   + (f", console: {last[0][:70]}" if last else ""))
        driver.wait_for_state(ref, PowerState.SHUTOFF, timeout=600)
    driver.finish_install(ref)
    driver.start(ref)


#: Terminal control sequences (CSI, OSC, charset selection) in a serial console log: the
#: installers draw their screens with them. A cursor move to a row starts a new line.
_MOVE = re.compile(r"\x1b\[[0-9;]*[Hf]")
_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|"
                      r"\x1b[=>78DEHM]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def console_tail(driver: Driver, ref: VMRef, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of text in the VM's serial console log, without terminal
    control sequences; none when the log is not readable here (a remote hypervisor)."""
    path = driver.console_log_path(ref)
    if not path:
        return []
    try:
        with open(path, "rb") as log:
            log.seek(0, 2)
            log.seek(max(0, log.tell() - 65536))
            raw = log.read().decode("utf-8", "replace")
    except OSError:
        return []
    text = _CONTROL.sub(" ", _MOVE.sub("\n", raw).replace("\r", "\n"))
    kept = [_readable(" ".join(line.split())) for line in text.split("\n")]
    return [line for line in kept if line][-lines:]


def _readable(line: str) -> str:
    """A console line without the frame a text installer draws around it (newt's dialog
    borders in the line-drawing character set: l q k x m j t u) and without screen's
    status bar; a dialog's top border gives its title."""
    title = re.fullmatch(r"l?q+u (.+?) tq+k?", line)
    if title:
        return title.group(1)
    if re.fullmatch(r"[lqkxmjtu ]*", line) or re.fullmatch(r"\[.*\]\[.*\]", line):
        return ""
    if line.startswith("x ") and line.endswith(" x"):
        return line[2:-2].strip()
    return line


def _console_excerpt(driver: Driver, ref: VMRef) -> str:
    tail = console_tail(driver, ref)
    if not tail:
        return ""
    return (f"; the console's last lines ({driver.console_log_path(ref)}):\n  "
            + "\n  ".join(tail))

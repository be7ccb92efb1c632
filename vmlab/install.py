"""How a lab's OS gets onto its disk: an `image` built from packages, or a `kickstart`
install from the distribution's ISO (virt-install's pattern: an install boot with the
installer's kernel and ``inst.ks=``, then the final definition that boots from disk)."""
from __future__ import annotations

import contextlib
import errno
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from vmlab import paths
from vmlab.dns import guest_dns
from vmlab.drivers.base import DiskSpec, Driver, KernelBoot, PowerState, VMRef
from vmlab.errors import InfrastructureError, WaitTimeout
from vmlab.profile import ImageInstall, KickstartInstall, LoadedProfile
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
    kickstart: KickstartInstall | None = None
    server: object | None = field(default=None, repr=False)


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
        vmware_tools=profile.hypervisor.kind == "vsphere", finish=finish)


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
    if profile.hypervisor.kind == "vsphere":
        # vSphere cannot pass kernel arguments to a stock ISO: anaconda finds the
        # kickstart on a second CD-ROM labelled OEMDRV instead.
        from vmlab.iso import make_oemdrv_iso

        oemdrv = make_oemdrv_iso(text, paths.cache_dir() / "isos" / f"{lab}-oemdrv.iso")
        with server:
            yield Prepared(disk=DiskSpec(size_gib=profile.vm.disk_gib), cdroms=(iso, oemdrv),
                           guest_os="centos7", kickstart=install, server=server)
        oemdrv.unlink(missing_ok=True)
        return
    label = install.iso_label.replace(" ", "\\x20")
    cmdline = install_boot_cmdline(ks_url=server.url_for("ks.cfg"), stage2=f"hd:LABEL={label}")
    with server:
        yield Prepared(disk=DiskSpec(size_gib=profile.vm.disk_gib),
                       boot=KernelBoot(kernel, initrd, cmdline), cdroms=(iso,),
                       guest_os="centos7", kickstart=install, server=server)


def _install_server_address(loaded: LoadedProfile,
                            install: KickstartInstall) -> tuple[str, str]:
    """(address to bind, address the guest uses) for the install server: ``serve_on``, or
    the host's address on the provider network (which exists once that network runs)."""
    if install.serve_on is not None:
        return str(install.serve_on), str(install.serve_on)
    provider = loaded.profile.vm.nic("provider")
    assert provider is not None
    if provider.network == "user":
        # qemu's user-mode network shows the host's loopback to the guest as .2
        return "127.0.0.1", str(list(provider.subnet.hosts())[1])
    address = str(network_spec("", provider).host_address)
    return address, address


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
    """Start the VM; for a kickstart, wait for the install, then boot from disk."""
    driver.start(ref)
    if prepared.kickstart is None:
        return
    timeout = prepared.kickstart.install_timeout_minutes * 60
    server = prepared.server
    with progress.waiting("installing the OS from the kickstart") as update:
        deadline = time.monotonic() + timeout
        while not server.wait_done(10):  # type: ignore[union-attr]
            if driver.state(ref) == PowerState.SHUTOFF:
                raise InfrastructureError("the installer stopped before it reported success",
                                          hint="read the console log (`vmlab status`)")
            if time.monotonic() > deadline:
                raise WaitTimeout(f"the kickstart install did not finish in {timeout // 60} min",
                                  hint="read the console log; is the install source reachable?")
            update(f"{(timeout - (deadline - time.monotonic())) / 60:.0f} min")
        driver.wait_for_state(ref, PowerState.SHUTOFF, timeout=600)
    driver.set_kernel_boot(ref, None)
    driver.start(ref)

"""`vmlab preflight`: what a create of a profile needs, checked in seconds before a build
that takes most of an hour (the shape of Kolla-Ansible's prechecks: one short check per
thing that can stop the deploy, each failing with what to do about it).

- urls: every URL the plan fetches answers as it should (vmlab.preflight.urls); for a
  preseed install also that the mirror has kernel modules for the netboot kernel
  (vmlab.preflight.installer)
- the hypervisor: reachable, KVM, networks that collide with nothing, room for the disk and
  the media, memory and CPUs (each driver's ``preflight``; on vSphere also the login, the
  datastore and the port groups)
- the install server: its address, and a firewall that lets the guest reach it
  (vmlab.preflight.serving)
- this machine: room in the download cache

Results are plain ``Check`` values; only vmlab.cli prints them. ``create`` runs the same
checks first and stops, before it makes anything, when one fails.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from vmlab import paths
from vmlab.drivers.base import Check, DiskSpec, Driver
from vmlab.errors import EXIT_FAILED, EXIT_INFRA, VmlabError
from vmlab.preflight import urls as url_checks
from vmlab.profile import ImageInstall, KickstartInstall, LoadedProfile, PreseedInstall
from vmlab.progress import QUIET, Progress
from vmlab.vmspec import build_vm_spec, hypervisor_uri, vm_name

__all__ = ["Check", "PreflightFailed", "Report", "require", "require_install_port", "run"]

GIB = 1 << 30
#: Room an image build needs in the cache (the debootstrapped tree, then the disk image).
IMAGE_BUILD_BYTES = 2 * GIB
AREAS = ("lab", "hypervisor", "network", "install server", "storage", "memory", "urls")


@dataclass
class Report:
    profile: str
    lab: str
    hypervisor: str
    checks: list[Check]
    seconds: float

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.status == "warn"]

    def to_json(self) -> dict:
        return {"profile": self.profile, "lab": self.lab, "hypervisor": self.hypervisor,
                "ok": not self.failures, "failures": len(self.failures),
                "warnings": len(self.warnings), "seconds": round(self.seconds, 2),
                "checks": [asdict(check) for check in self.checks]}


class PreflightFailed(VmlabError):
    """A check that would stop the create failed; nothing has been made. The exit code is
    3 (unavailable) when the only failure is that the hypervisor does not answer, as for
    every other command that cannot reach it; 1 otherwise."""

    exit_code = EXIT_FAILED

    def __init__(self, failures: list[Check], profile: str, what: str = "nothing was made") \
            -> None:
        if all(c.area == "hypervisor" and c.name == "connection" for c in failures):
            self.exit_code = EXIT_INFRA
        self.problems = [f"{c.name}: {c.detail}" for c in failures]
        fixes = [c.fix for c in failures if c.fix]
        super().__init__(
            f"preflight: {len(failures)} check{'s' * (len(failures) != 1)} failed; {what}",
            hint="\n".join(fixes + [f"all checks: vmlab preflight --profile {profile}"]))


def run(lab: str, loaded: LoadedProfile, *, urls: bool = True,
        timeout: float = url_checks.TIMEOUT) -> Report:
    """Every check for creating lab ``lab`` from ``loaded``; changes nothing anywhere."""
    from vmlab.lab import open_driver  # the one place that turns a profile into a driver
    from vmlab.state import LabFiles

    started = time.monotonic()
    profile = loaded.profile
    checks: list[Check] = []
    if LabFiles(lab).exists():
        checks.append(Check("lab", f"lab {lab}", "fail", "a lab of that name exists",
                            f"use it, remove it (vmlab destroy --lab {lab}) or choose "
                            "another --lab name"))
    pending = url_checks.check_all(url_checks.planned_fetches(lab, loaded), timeout) \
        if urls else None
    driver: Driver | None = None
    try:
        driver = open_driver(loaded.profile.hypervisor)
    except VmlabError as exc:
        checks.append(Check("hypervisor", "connection", "fail", exc.message, exc.hint or ""))
    answered = pending.results() if pending is not None else []
    media = _media_bytes(loaded, answered)
    if driver is not None:
        with driver:
            checks += _hypervisor_checks(driver, lab, loaded, media)
    checks += [result.check for result in answered]
    if not urls:
        checks.append(Check("urls", "URLs", "warn", "not checked (asked not to)"))
    checks.append(_cache_room(loaded, media))
    if isinstance(profile.install, PreseedInstall):
        checks += _netboot_checks(profile.install, answered)
    checks.sort(key=lambda c: AREAS.index(c.area) if c.area in AREAS else len(AREAS))
    return Report(profile.name, lab, hypervisor_uri(profile.hypervisor), checks,
                  time.monotonic() - started)


def _hypervisor_checks(driver: Driver, lab: str, loaded: LoadedProfile,
                       media: int) -> list[Check]:
    from vmlab.preflight import serving

    profile = loaded.profile
    spec = build_vm_spec(lab, profile, disk=DiskSpec(profile.vm.disk_gib))
    try:
        found = driver.find(vm_name(lab))
        checks = []
        if found is not None:
            checks.append(Check("lab", f"VM {vm_name(lab)}", "fail",
                                f"a VM of that name exists on {hypervisor_uri(profile.hypervisor)}",
                                "remove it, or create the lab under another --lab name"))
        checks += driver.preflight(spec, media)
        checks += serving.checks(driver, loaded, lab)
        return checks
    except VmlabError as exc:
        return [Check("hypervisor", "connection", "fail", exc.message, exc.hint or "")]


def _media_bytes(loaded: LoadedProfile, answered: list[url_checks.UrlResult]) -> int:
    """What the create uploads to the hypervisor's storage besides the disk (the ISO; an
    image's size is known only once it is built)."""
    install = loaded.profile.install
    if isinstance(install, KickstartInstall):
        for result in answered:
            if result.fetch.kind == "iso" and result.size:
                return result.size
        cached = url_checks.cached_copy(paths.cache_dir() / "isos", install.iso_url,
                                    install.iso_sha256)
        return cached.stat().st_size if cached else 0
    return 0


def _cache_room(loaded: LoadedProfile, media: int) -> Check:
    install = loaded.profile.install
    cache = paths.cache_dir()
    free = _free_bytes(cache)
    if isinstance(install, KickstartInstall):
        if url_checks.cached_copy(cache / "isos", install.iso_url, install.iso_sha256):
            return Check("storage", "download cache", "ok",
                         f"the ISO is in {cache / 'isos'} already")
        needed, what = media, "the ISO"
    elif isinstance(install, ImageInstall):
        needed, what = IMAGE_BUILD_BYTES, "building the guest image"
    else:
        needed, what = 0, "nothing"
    if free < needed:
        return Check("storage", "download cache", "fail",
                     f"{free / GIB:.1f} GiB free in {cache}; {what} needs "
                     f"{needed / GIB:.1f} GiB", "free space there, or point XDG_CACHE_HOME at "
                     "a file system with room")
    return Check("storage", "download cache", "ok",
                 f"{free / GIB:.1f} GiB free in {cache}" +
                 (f" for {what} ({needed / GIB:.1f} GiB)" if needed else ""))


def _netboot_files(install: PreseedInstall) -> Check:
    from vmlab.install import netboot_files

    name = "installer's netboot kernel and initrd"
    try:
        kernel, initrd = netboot_files(install)
    except VmlabError as exc:
        return Check("install server", name, "fail", exc.message, exc.hint or "")
    return Check("install server", name, "ok", f"{kernel} and {initrd.name}")


def _netboot_checks(install: PreseedInstall,
                    answered: list[url_checks.UrlResult]) -> list[Check]:
    """The netboot files are there, and the mirror has kernel modules for their kernel
    (checked against the udeb index the URL checks read; not when they were not asked or
    could not read it, which they report)."""
    files = _netboot_files(install)
    udebs = next((result for result in answered if result.udeb_index is not None), None)
    if files.status != "ok" or udebs is None or udebs.udeb_index is None:
        return [files]
    return [files, _netboot_kernel(install, udebs.fetch.url,
                                   url_checks.udebs_suite(udebs.fetch), udebs.udeb_index)]


def _netboot_kernel(install: PreseedInstall, mirror: str, suite: str, index: bytes) -> Check:
    from vmlab.install import netboot_files
    from vmlab.netboot import initrd_kernel_version
    from vmlab.preflight.installer import KERNEL_CHECK, check_kernel

    try:
        _, initrd = netboot_files(install)
        release = initrd_kernel_version(initrd)
    except VmlabError as exc:
        return Check("urls", KERNEL_CHECK, "fail", exc.message, exc.hint or "")
    return check_kernel(mirror, suite, initrd, release, index)


def _free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def require(lab: str, loaded: LoadedProfile, profile_arg: str, *, urls: bool = True,
            progress: Progress = QUIET) -> Report:
    """Run the checks for a create; warnings go to ``progress``, a failure raises
    PreflightFailed (before anything is made)."""
    with progress.waiting("preflight checks"):
        report = run(lab, loaded, urls=urls)
    for check in report.warnings:
        progress.warn(f"{check.name}: {check.detail}")
    if report.failures:
        raise PreflightFailed(report.failures, profile_arg)
    progress.step(f"preflight: {len(report.checks)} checks passed"
                  f"{f', {len(report.warnings)} with a warning' if report.warnings else ''} "
                  f"({report.seconds:.1f}s)")
    return report


def require_install_port(driver: Driver, loaded: LoadedProfile, lab: str, port: int) -> None:
    """Once the install server listens: its port gets through the firewall, before the VM
    is defined and boots."""
    from vmlab.preflight import serving

    failed = [c for c in serving.checks(driver, loaded, lab, port) if c.status == "fail"]
    if failed:
        raise PreflightFailed(failed, str(loaded.path),
                              "the networks made for the lab are removed again")

"""`vmlab create`: check everything first, then build the lab's networks, install server and
VM, bring its OS up, take the first snapshot and save the lab's state. A failure anywhere
removes what the create made (VM, disks, networks, the lab's files), keeping only its log
under ``<state>/failed/``."""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
from pathlib import Path

from vmlab import guestaccess, paths
from vmlab import lab as labs
from vmlab.drivers.base import Driver, VMRef
from vmlab.errors import SnapshotFailed, StateError, UsageError, VmlabError
from vmlab.guestaccess import GuestAccess
from vmlab.names import COMPLETE, check_lab_name
from vmlab.profile import LoadedProfile, load_profile
from vmlab.progress import QUIET, Progress
from vmlab.stages import Stage, resolve_stages
from vmlab.state import LabFiles, now
from vmlab.statemodel import LabState, StageRecord
from vmlab.vmspec import build_vm_spec, hypervisor_uri, nic_specs, vm_name


def create(profile_name: str, lab: str | None = None, *, provision: bool = True,
           seed_passwords: str | None = None, progress: Progress = QUIET,
           check_urls: bool = True, guest: GuestAccess | None = None) -> str:
    """Build the VM, bring its OS up, take the first stage's snapshot, then provision.

    Everything `vmlab plan` checks is checked first, then the preflight (the URL checks
    unless ``check_urls`` is False): a failure stops the create before it makes a file or
    a hypervisor object.
    """
    from vmlab import preflight
    from vmlab.plan import plan

    loaded = load_profile(profile_name)
    name = check_lab_name(lab if lab is not None else loaded.profile.name)
    stages = resolve_stages(loaded)
    plan(name, loaded)  # e.g. a stage needing a secret the profile does not generate
    _check_seed(seed_passwords)
    files = LabFiles(name)
    _refuse_existing(files)
    preflight.require(name, loaded, profile_name, urls=check_urls, progress=progress)
    files.root.mkdir(parents=True, exist_ok=True)
    with files.lock("create"), labs.lab_log(files):
        _refuse_existing(files)  # made by another create while this one waited
        try:
            _create_locked(files, loaded, stages, name, seed_passwords, progress,
                           guest or guestaccess.default())
        except BaseException as exc:
            kept = _remove_lab_dir(files, exc)
            if isinstance(exc, VmlabError):
                exc.hint = (f"{exc.hint}\n" if exc.hint else "") + f"what create did: {kept}"
            else:
                progress.warn(f"what create did, and why it stopped: {kept}")
            raise
    if provision:
        from vmlab.reconcile import run_provision

        run_provision(name, progress=progress, guest=guest)
    return name


def _check_seed(seed: str | None) -> None:
    """A seed every stage can hand on byte for byte (never shown: it is a password)."""
    from vmlab.stages.secretio import seed_problem

    problem = None if seed is None else seed_problem(seed)
    if problem is not None:
        raise UsageError(f"the --seed-passwords value cannot be every secret of the lab: "
                         f"{problem}", hint="choose a value without it, or leave "
                                            "--seed-passwords out to have secrets generated")


def _refuse_existing(files: LabFiles) -> None:
    if not files.exists():
        return
    name = files.lab
    try:
        files.load()
    except StateError as exc:
        raise UsageError(f"lab {name!r} already exists, and {exc.message}",
                         hint=files.way_out() + "\nthen create it again") from None
    raise UsageError(f"lab {name!r} already exists",
                     hint=f"use it (`vmlab status --lab {name}`), remove it "
                          f"(`vmlab destroy --lab {name}`) or pick another --lab name")


def _create_locked(files: LabFiles, loaded: LoadedProfile, stages: list[Stage], name: str,
                   seed_passwords: str | None, progress: Progress,
                   guest: GuestAccess) -> None:
    """Networks first, then the install media and server (which listens on the provider
    network's address, so only once that network runs), then the VM. A failure removes
    the networks made here with everything else."""
    from vmlab import install, preflight
    from vmlab.sshkeys import ensure_keypair

    profile = loaded.profile
    public_key = ensure_keypair(files.ssh_key, comment=f"vmlab-{name}")
    secrets = files.ensure_secrets(profile.secrets, seed=seed_passwords)
    with labs.open_driver(profile.hypervisor) as driver:
        if driver.find(vm_name(name)) is not None:
            raise UsageError(f"a VM named {vm_name(name)!r} already exists on "
                             f"{hypervisor_uri(profile.hypervisor)}",
                             hint="remove it, or create the lab under another --lab name")
        made_networks = driver.ensure_networks(nic_specs(name, profile))
        if made_networks:
            progress.step(f"network{'s' * (len(made_networks) > 1)} "
                          f"{', '.join(made_networks)} made and started")
        try:
            with install.prepare(name, loaded, public_key, secrets, progress) as prepared:
                if prepared.server is not None:  # its port is known now: check it is open
                    preflight.require_install_port(driver, loaded, name, prepared.server.port)
                spec = build_vm_spec(name, profile, disk=prepared.disk, boot=prepared.boot,
                                     guest_data=prepared.guest_data, cdroms=prepared.cdroms,
                                     guest_os=prepared.guest_os,
                                     install_once=prepared.install_once)
                spec = dataclasses.replace(spec, networks_made=tuple(made_networks))
                with progress.waiting(f"creating VM {spec.name}") as update:
                    ref = driver.create(spec, progress=update)
                made_networks = []  # the VM owns them now: destroying it removes them
                _install_and_snapshot(files, loaded, stages, name, driver, ref, prepared,
                                      progress, guest)
        except BaseException:
            driver.remove_networks(made_networks)
            raise


def _install_and_snapshot(files: LabFiles, loaded: LoadedProfile, stages: list[Stage],
                          name: str, driver: Driver, ref: VMRef, prepared,
                          progress: Progress, guest: GuestAccess) -> None:
    """Boot the new VM, install its OS, take the first snapshot and save the lab's state;
    on failure remove the VM and everything made for it."""
    from vmlab import install

    profile = loaded.profile
    try:
        state = LabState(lab=name, profile=profile.name, profile_path=str(loaded.path),
                         driver=driver.kind, uri=hypervisor_uri(profile.hypervisor),
                         hypervisor=profile.hypervisor, ssh=profile.ssh,
                         snapshots=profile.snapshots, platform=profile.platform,
                         vm_name=ref.name, vm_uuid=ref.uuid,
                         acceleration=driver.acceleration(), created=now(),
                         stages=[StageRecord(name=s.name) for s in stages])
        files.known_hosts.unlink(missing_ok=True)
        lab = labs.Lab(files, state, loaded, stages, driver, progress, guest=guest)
        progress.step(f"starting {ref.name} ({state.acceleration})")
        install.run_install(driver, ref, prepared, progress)
        lab.wait_for_ssh(ref)
        first = stages[0].name if stages else COMPLETE
        try:
            lab.take_snapshot(ref, first, "the OS is up; nothing provisioned")
        except SnapshotFailed as exc:  # there is no lab to resume: say so
            raise SnapshotFailed(exc.message, hint="create removes what it made; run it "
                                 "again once the hypervisor can take snapshots (is its "
                                 "storage pool full?)") from exc
        lab.save()
    except BaseException:
        progress.warn(f"create failed; removing {ref.name} and everything made for it")
        with contextlib.suppress(VmlabError):
            driver.destroy(ref)
        raise


def _remove_lab_dir(files: LabFiles, exc: BaseException) -> Path:
    """Drop the files of a failed create, but keep vmlab's log of it, with the reason at the
    end, under ``<state>/failed/``; return its path (the error shows it)."""
    import traceback

    from vmlab.redaction import redact

    log_file = files.logs / "vmlab.log"
    text = log_file.read_text(errors="replace") if log_file.is_file() else ""
    if isinstance(exc, VmlabError):
        text += f"create failed: {exc.message}\n"
        if exc.hint:
            text += "hint: " + exc.hint.replace("\n", "\n      ") + "\n"
    elif isinstance(exc, KeyboardInterrupt):
        text += "create interrupted (Ctrl-C or SIGTERM)\n"
    else:
        text += "create failed unexpectedly:\n" + "".join(traceback.format_exception(exc))
    kept = paths.state_dir() / "failed" / f"{files.lab}-{now():%Y%m%dT%H%M%S}.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(redact(text, files.load_secrets().values()))
    shutil.rmtree(files.root, ignore_errors=True)
    return kept

"""Orchestration: an open lab (`Lab`) and how a lab is opened from its state; rollback,
destroy, forget. Creating a lab is vmlab.create; provisioning and resuming, vmlab.reconcile.

The rules (see the README): before stage N runs, the VM has a snapshot named after stage N;
after the last stage it has one named ``complete``. Rolling back stage N reverts to the
snapshot N, deletes the snapshots of later stages (they describe a future that no longer
exists) and marks N and every later stage pending, so ``provision`` runs from N again.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from vmlab import drivers, guestaccess, paths
from vmlab.drivers.base import Driver, PowerState, Snapshot, VMRef
from vmlab.guestaccess import GuestAccess
from vmlab.errors import (DriverError, InfrastructureError, NotFound, NotOwned,
                          RemoteCommandFailed, SnapshotExists, SnapshotFailed, StageFailed,
                          VmlabError)
from vmlab.labprofile import follow_stage_list, load_lab_profile
from vmlab.labview import lab_vm
from vmlab.names import COMPLETE, check_lab_name
from vmlab.paths import resolve_lab_name  # noqa: F401 - commands use it from here
from vmlab.profile import Hypervisor, LoadedProfile
from vmlab.progress import QUIET, CommandWatcher, Progress
from vmlab.sshtarget import Target
from vmlab.stages import Stage, StageEnv, resolve_stages
from vmlab.state import LabFiles, now
from vmlab.statemodel import LabState, StageRecord

if TYPE_CHECKING:
    from vmlab.fingerprint import StagePrint
    from vmlab.remote import Session  # imported lazily at run time: it brings in Fabric

log = logging.getLogger("vmlab")

BOOT_TIMEOUT = float(os.environ.get("VMLAB_BOOT_TIMEOUT", "600"))
SHUTDOWN_TIMEOUT = 180.0


def _set_guest_clock(session: Session) -> None:
    """Step the guest's clock to now. A live snapshot resumes the guest at the moment it was
    taken, so its clock is as far behind as the snapshot is old; chrony would only slew it
    back over hours (apt and tokens notice)."""
    result = session.run(f"date -u -s @{time.time():.3f}", check=False)
    if result.exit_code != 0:
        log.warning("could not set the guest's clock after a live revert: %s",
                    result.stderr.strip())


@dataclass
class Lab:
    """An open lab: its files, state and driver (under its lock when it may change), and
    for the commands that run stages, its profile and stages."""

    files: LabFiles
    state: LabState
    loaded: LoadedProfile | None
    stages: list[Stage]
    driver: Driver
    progress: Progress
    #: How the guest is reached: SSH, or a scripted guest in the fast tests.
    guest: GuestAccess = dataclasses.field(default_factory=guestaccess.default)
    #: The stages' fingerprints as the profile is now (see vmlab.fingerprint), recorded
    #: with each stage as it runs.
    prints: dict[str, "StagePrint"] = dataclasses.field(default_factory=dict)
    #: The drift key of the files those fingerprints come from (None: one changed while
    #: they were read) and the files (see vmlab.driftkey); None: not worked out.
    drift: tuple[str | None, list[str]] | None = None

    @property
    def name(self) -> str:
        return self.files.lab

    @property
    def secrets(self) -> dict[str, str]:
        return self.files.load_secrets()

    def ref(self) -> VMRef:
        return lab_vm(self.driver, self.name, self.state.vm_name)

    def save(self) -> None:
        """Write the state; with the drift key when no stage that ran has changed since (so
        that `vmlab status` need not work the fingerprints out to show that)."""
        if self.drift is not None:
            from vmlab.fingerprint import first_changed

            key, watched = self.drift
            unchanged = first_changed(self.state.stages, list(self.prints.values())) is None
            self.state.drift_key = key if unchanged else None
            self.state.drift_files = watched
        self.files.save(self.state)

    def stage_env(self, stage: Stage | None = None) -> StageEnv:
        if self.loaded is None:
            raise AssertionError("stages run only in a lab opened with its profile")
        host_files: dict[str, str] = {}
        if stage is not None and stage.host_files:
            from vmlab import hostfiles

            with self.progress.waiting(f"preparing {', '.join(stage.host_files)} on the host") \
                    as update:
                host_files = hostfiles.prepare(stage.host_files, self.loaded.profile,
                                               paths.cache_dir(), update)
        return StageEnv(lab=self.name, profile=self.loaded.profile, secrets=self.secrets,
                        host_files=host_files)

    # -- SSH ---------------------------------------------------------------------------
    def target(self, ref: VMRef) -> Target:
        endpoint = self.driver.ssh_endpoint(ref, self.state.ssh.port)
        return Target(host=endpoint.host, port=endpoint.port, user=self.state.ssh.user,
                      key_file=self.files.ssh_key, known_hosts=self.files.known_hosts,
                      jump=endpoint.jump)

    def wait_for_ssh(self, ref: VMRef, *, set_clock: bool = False) -> None:
        with self.progress.waiting(f"waiting for SSH on {self.state.vm_name}") as update:
            self.guest.wait_ready(self.target(ref), timeout=BOOT_TIMEOUT, progress=update,
                                  then=_set_guest_clock if set_clock else None)

    @contextlib.contextmanager
    def session(self, ref: VMRef, log_path: Path | None,
                on_command: CommandWatcher | None = None) -> Iterator:
        session = self.guest.open(
            self.target(ref), log_path=log_path, secrets=self.secrets.values(),
            command_timeout=self.state.ssh.command_timeout_minutes * 60,
            on_command=on_command)
        try:
            yield session
        finally:
            session.close()

    # -- power and snapshots -------------------------------------------------------------
    def ensure_running(self, ref: VMRef, *, set_clock: bool = False) -> None:
        """Start the VM if needed and wait until SSH answers; ``set_clock`` steps the
        guest's clock to now (after a revert to a live snapshot)."""
        if self.driver.state(ref) != PowerState.RUNNING:
            self.progress.step(f"starting {ref.name}")
            self.driver.start(ref)
        self.wait_for_ssh(ref, set_clock=set_clock)

    def shutdown(self, ref: VMRef) -> None:
        """A clean shutdown from inside the guest, then ACPI, then a hard stop."""
        if self.driver.state(ref) == PowerState.SHUTOFF:
            return
        with self.progress.waiting(f"shutting down {ref.name}"):
            try:
                with self.session(ref, self.files.logs / "power.log") as c:
                    c.run("sync; (sleep 1; systemctl poweroff) >/dev/null 2>&1 &", check=False)
            except InfrastructureError as exc:
                log.warning("guest shutdown over SSH failed (%s); asking the hypervisor", exc)
            try:
                self.driver.wait_for_state(ref, PowerState.SHUTOFF, timeout=SHUTDOWN_TIMEOUT)
            except InfrastructureError:
                log.warning("guest did not power off; forcing it off")
                self.driver.stop(ref, hard=True)

    def snapshots(self, ref: VMRef) -> dict[str, Snapshot]:
        return {snap.name: snap for snap in self.driver.snapshot_list(ref)}

    def take_snapshot(self, ref: VMRef, name: str, description: str) -> None:
        mode = self.state.snapshots.mode
        started = time.monotonic()
        live = mode == "live"
        if not live:
            self.shutdown(ref)
        try:
            with self.progress.waiting(f"taking {'live ' if live else ''}snapshot {name!r}"):
                self.driver.snapshot_create(ref, name, description, live=live)
        except (DriverError, SnapshotExists) as exc:
            before = f"before stage {name}" if name != COMPLETE else "after the last stage"
            raise SnapshotFailed(
                f"the snapshot {name!r} ({before}) could not be taken: {exc.message}",
                hint=(exc.hint + "\n" if exc.hint else "") +
                f"nothing after it has run; once the hypervisor can take snapshots again "
                f"(is its storage pool full?), run: vmlab resume --lab {self.name}") from exc
        if not live:
            self.ensure_running(ref)
        self.progress.step(f"snapshot {name!r} taken ({mode}, {time.monotonic() - started:.0f}s)")

    # -- stages ----------------------------------------------------------------------------
    def run_stage(self, ref: VMRef, stage: Stage, record: StageRecord) -> None:
        from vmlab.remote import request_reboot

        record.attempts += 1
        log_path = self.files.logs / f"{self.state.index(stage.name) + 1:02d}-{stage.name}-" \
                                     f"{record.attempts}.log"
        record.status, record.started, record.finished = "running", now(), None
        record.log, record.error, record.duration = str(log_path), None, None
        self.record_plan(stage.name, record)
        self.save()
        started = time.monotonic()
        try:
            env = self.stage_env(stage)
            with self.progress.waiting(f"stage {stage.name}: install") as waiting:
                with self.session(ref, log_path, on_command=waiting.command) as c:
                    stage.install(c, env)
                    boot_id = request_reboot(c) if stage.reboot else None
            if boot_id is not None:
                self.reboot_wait(ref, boot_id)
            with self.progress.waiting(f"stage {stage.name}: verify") as waiting:
                with self.session(ref, log_path, on_command=waiting.command) as c:
                    stage.verify(c, env)
        except VmlabError as exc:
            record.status, record.error = "failed", exc.message
            record.finished, record.duration = now(), round(time.monotonic() - started, 1)
            self.save()
            first = f"{exc.hint}\n" if exc.hint else ""  # e.g. what a lost connection means
            raise StageFailed(
                stage.name, exc.message, log_path=str(log_path), lab=self.name,
                cause=exc if isinstance(exc, RemoteCommandFailed) else None,
                hint=f"{first}log: {log_path}\nundo it and retry:\n"
                     f"  vmlab rollback {stage.name} --lab {self.name}\n"
                     f"  vmlab resume --lab {self.name}") from exc
        except BaseException:
            record.status, record.error = "failed", "interrupted"
            record.finished = now()
            self.save()
            raise
        record.status, record.finished = "done", now()
        record.duration = round(time.monotonic() - started, 1)
        self.save()
        self.progress.step(f"stage {stage.name} done ({record.duration:.0f}s)")

    def record_plan(self, name: str, record: StageRecord) -> None:
        """Record the fingerprint of the plan the stage runs with, and keep that plan's text
        (secrets masked) for `vmlab diff`."""
        from vmlab.state import write_atomic

        stage_print = self.prints.get(name)
        if stage_print is None:
            return
        record.fingerprint, record.plan_hash = stage_print.fingerprint, stage_print.plan_hash
        write_atomic(self.files.plans / f"{name}.txt", stage_print.text.encode(), 0o600)

    def reboot_wait(self, ref: VMRef, boot_id: str) -> None:
        """After a reboot was asked for: wait until SSH answers from a new boot (a boot id
        other than ``boot_id``, read before the reboot) whose services have settled."""
        with self.progress.waiting(f"waiting for {self.state.vm_name} to reboot") as update:
            self.guest.wait_ready(self.target(ref), timeout=BOOT_TIMEOUT, progress=update,
                                  after_boot=boot_id)


# -- opening labs ---------------------------------------------------------------------------

def open_driver(hypervisor: Hypervisor) -> Driver:
    """Connect to a hypervisor section: a profile's, or the one a lab's state recorded."""
    return drivers.open_driver(hypervisor.model_dump(mode="json"))


@contextlib.contextmanager
def open_lab(lab: str | None, command: str, progress: Progress = QUIET,
             *, lock: bool = True, with_stages: bool = False,
             guest: GuestAccess | None = None) -> Iterator[Lab]:
    """Load the lab's state, connect to the hypervisor it records, and reconcile.

    Commands that change the lab take its lock (``lock=True``); read-only ones (a rebuild's
    report) do not, so they work while a long provision runs (status, snapshots and ssh do
    not open the lab at all: vmlab.labview). Only commands that
    run stages (``with_stages``) read the lab's profile: everything else works from the
    state, whatever became of the profile file. ``guest``: how the guest is reached
    (default: guestaccess.default(), SSH).
    """
    files = LabFiles(resolve_lab_name(lab))
    files.load()  # NotFound before taking a lock in a directory that does not exist
    guard = files.lock(command) if lock else contextlib.nullcontext()
    with guard, (lab_log(files) if lock else contextlib.nullcontext()):
        state = files.load()
        loaded, stages = None, []
        if with_stages:
            loaded = load_lab_profile(state, progress)
            stages = resolve_stages(loaded)
            follow_stage_list(state, [s.name for s in stages], loaded, progress)
        with open_driver(state.hypervisor) as driver:
            lab_obj = Lab(files, state, loaded, stages, driver, progress,
                          guest=guest or guestaccess.default())
            if lock:
                _reconcile_interrupted(lab_obj)
            yield lab_obj


def _reconcile_interrupted(lab: Lab) -> None:
    """A stage still 'running' while we hold the lock was cut short by a process that died."""
    for record in lab.state.stages:
        if record.status == "running":
            record.status, record.error = "failed", "interrupted (vmlab stopped during the stage)"
            lab.save()


@contextlib.contextmanager
def lab_log(files: LabFiles) -> Iterator[None]:
    """Append vmlab's own log for this lab to logs/vmlab.log, secrets redacted."""
    files.logs.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(files.logs / "vmlab.log")
    handler.setFormatter(_RedactingFormatter(files))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("vmlab")
    previous_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


class _RedactingFormatter(logging.Formatter):
    def __init__(self, files: LabFiles) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.files = files

    def format(self, record: logging.LogRecord) -> str:
        from vmlab.redaction import redact

        return redact(super().format(record), self.files.load_secrets().values())


# -- commands -----------------------------------------------------------------------------

def rollback(stage: str, lab: str | None = None, *, progress: Progress = QUIET,
             guest: GuestAccess | None = None) -> None:
    """Revert to the snapshot taken just before ``stage`` and mark it and later stages pending.

    Works from the lab's state alone (its stage list and the hypervisor it records); the
    stage name is checked against that list before anything is connected to.
    """
    name = resolve_lab_name(lab)
    LabFiles(name).load().stage(stage)  # NotFound naming the stages there are
    with open_lab(name, f"rollback {stage}", progress, guest=guest) as lab_obj:
        rollback_locked(lab_obj, lab_obj.ref(), stage, progress)
        progress.step(f"rolled back to just before {stage}; `vmlab resume` runs it again")


def rollback_locked(lab_obj: Lab, ref: VMRef, stage: str, progress: Progress) -> None:
    """Rollback's work, in a lab opened under its lock; the VM runs again afterwards."""
    index = lab_obj.state.index(stage)
    snapshots = lab_obj.snapshots(ref)
    if stage not in snapshots:
        raise NotFound(f"lab {lab_obj.name!r} has no snapshot {stage!r}: stage {stage} "
                       "has not been reached yet",
                       hint=f"see `vmlab snapshots --lab {lab_obj.name}` for the "
                            "snapshots there are")
    with progress.waiting(f"reverting to snapshot {stage!r}"):
        lab_obj.driver.snapshot_revert(ref, stage)
    later = [r.name for r in lab_obj.state.stages[index + 1:]] + [COMPLETE]
    for name in later:
        if name in snapshots:
            lab_obj.driver.snapshot_delete(ref, name)
            progress.step(f"deleted snapshot {name!r} (taken after {stage} ran)")
    for record in lab_obj.state.stages[index:]:
        record.status, record.error = "pending", None
    lab_obj.save()
    lab_obj.ensure_running(ref, set_clock=snapshots[stage].state == PowerState.RUNNING)


def destroy(lab: str | None = None, *, progress: Progress = QUIET) -> str:
    """Remove the lab's VM with its snapshots, disks and networks, then its files.

    Works from the lab's state alone: the hypervisor and VM it records.
    """
    name = resolve_lab_name(lab)
    files = LabFiles(name)
    files.load()  # a lab that is not there, or whose state cannot say where its VM is
    with files.lock("destroy"):
        state = files.load()
        try:
            driver = open_driver(state.hypervisor)
        except InfrastructureError as exc:
            exc.hint = (f"{exc.hint}\n" if exc.hint else "") + (
                "to give the lab up without its hypervisor, drop only its files (its VM "
                f"stays there): `vmlab destroy --forget --lab {name}`")
            raise
        with driver:
            ref = driver.find(state.vm_name)
            if ref is not None:
                if ref.lab != name:
                    raise NotOwned(f"VM {ref.name!r} is not tagged as lab {name!r}'s; "
                                   "leaving it alone",
                                   hint=f"remove the lab's files only: vmlab destroy --forget "
                                        f"--lab {name}")
                with progress.waiting(f"destroying {ref.name}"):
                    driver.destroy(ref)
        shutil.rmtree(files.root, ignore_errors=True)
    return name


def forget(lab: str) -> None:
    """Drop a lab's own directory without touching the hypervisor; whatever its state file
    holds (garbage, an unknown schema, nothing), this is the way out."""
    files = LabFiles(check_lab_name(lab))
    if not files.root.is_dir():
        raise NotFound(f"lab {lab!r} does not exist",
                       hint="see `vmlab status` for the labs there are")
    with files.lock("destroy --forget"):
        shutil.rmtree(files.root, ignore_errors=True)

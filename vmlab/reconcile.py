"""`vmlab provision` and `resume`: reconcile a lab with its profile, then run what is left.

A stage that ran would now run something else when its fingerprint changed (the profile, a
template or vmlab itself changed: vmlab.fingerprint); provisioning rolls back to the snapshot
before the first such stage and runs from there, so the stages before it are reused. It
records, with the fingerprints, the drift key `vmlab status` checks (vmlab.driftkey).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

from vmlab import attempts
from vmlab.attempts import StageAttempt
from vmlab.errors import StageFailed, UsageError
from vmlab.guestaccess import GuestAccess
from vmlab.lab import Lab, rollback_locked, open_lab
from vmlab.names import COMPLETE
from vmlab.progress import QUIET, Progress
from vmlab.drivers.refs import VMRef


@dataclass
class ProvisionResult:
    """What a provision did: the stage it rolled back to because it changed since it ran
    (None: none), the stages it ran, and whether there was nothing to do."""

    rolled_back_to: str | None = None
    ran: list[str] = dataclasses.field(default_factory=list)
    noop: bool = False
    #: Every stage run, in order, with its outcome.
    attempts: list[StageAttempt] = dataclasses.field(default_factory=list)
    #: The stage failure that stopped it (only with ``raise_failure=False``).
    failed: StageFailed | None = None


#: Asked before a provision rolls back to the first changed stage: (that stage, the stages
#: that will run again); False leaves the lab as it is.
ConfirmRollback = Callable[[str, list[str]], bool]


def run_provision(lab: str | None = None, *, progress: Progress = QUIET,
                  confirm: ConfirmRollback | None = None,
                  rollback_changed: bool = True, raise_failure: bool = True,
                  guest: GuestAccess | None = None) -> ProvisionResult:
    """Run every stage that is not done, each after its snapshot; then snapshot `complete`.

    First, reconcile: when a stage that ran would now run something else (its fingerprint
    changed: the profile, a template or vmlab changed), roll back to the snapshot before the
    first such stage and run from there, once ``confirm`` (if given) agrees.
    ``rollback_changed=False`` runs only the pending stages, whatever changed. A lab whose
    stages are all done and unchanged is left alone: one look at its snapshots.

    A stage that fails stops the run: StageFailed is raised, or with ``raise_failure=False``
    returned in the result with the attempts made (a rebuild reports them all).
    """
    from vmlab.fingerprint import drifts, first_changed, stage_prints

    result = ProvisionResult()
    reading = time.time_ns()  # before the profile is read: see driftkey.settled_key
    with open_lab(lab, "provision", progress, with_stages=True, guest=guest) as lab_obj:
        assert lab_obj.loaded is not None
        prints = stage_prints(lab_obj.name, lab_obj.loaded)
        lab_obj.prints = {p.stage: p for p in prints}
        lab_obj.drift = _drift(lab_obj, reading)
        records = lab_obj.state.stages
        changed = first_changed(records, prints)
        ref = lab_obj.ref()
        if changed is None and not lab_obj.state.pending():
            if COMPLETE in lab_obj.snapshots(ref):
                result.noop = True
                if lab_obj.drift != (lab_obj.state.drift_key, lab_obj.state.drift_files):
                    lab_obj.save()  # e.g. a profile touched but not changed: status is
                    # quick again
                return result
        if changed is not None and rollback_changed:
            kinds = drifts(records, prints)
            again = [r.name for r in records[lab_obj.state.index(changed):]]
            if confirm is not None and not confirm(changed, again):
                raise UsageError(f"lab {lab_obj.name!r} left as it is: stage {changed} "
                                 "changed since it ran, and rolling back was declined",
                                 hint=f"see what changed: vmlab diff --lab {lab_obj.name}; "
                                      "run only the pending stages: vmlab provision "
                                      f"--no-rollback --lab {lab_obj.name}")
            progress.step(f"stage {changed} {kinds[changed]} since it ran; rolling back to "
                          f"its snapshot and running {len(again)} stage"
                          f"{'s' * (len(again) != 1)} again")
            rollback_locked(lab_obj, ref, changed, progress)
            result.rolled_back_to = changed
        elif changed is not None:
            progress.warn(f"stage {changed} changed since it ran; not rolling back "
                          "(--no-rollback): running only the pending stages")
            lab_obj.ensure_running(ref)
        else:
            lab_obj.ensure_running(ref)
        by_name = {stage.name: stage for stage in lab_obj.stages}
        for record in lab_obj.state.stages:
            if record.status == "done":
                continue
            _snapshot_before(lab_obj, ref, record.name, f"before stage {record.name}",
                             result.ran)
            try:
                lab_obj.run_stage(ref, by_name[record.name], record)
            except StageFailed as exc:
                result.attempts.append(attempts.failed(record, exc))
                if raise_failure:
                    raise
                result.failed = exc
                return result
            result.attempts.append(attempts.passed(record))
            result.ran.append(record.name)
        _snapshot_before(lab_obj, ref, COMPLETE, "every stage done", result.ran)
    return result


def _drift(lab_obj: Lab, reading: int) -> tuple[str | None, list[str]]:
    """The drift key of the files the lab's plans were just read from (``reading``: when
    reading began) and those files."""
    from vmlab import driftkey

    assert lab_obj.loaded is not None
    watched = driftkey.watched_files(lab_obj.loaded, lab_obj.state.profile_path,
                                     lab_obj.state.profile)
    return driftkey.settled_key(watched, reading), watched


def _snapshot_before(lab_obj: Lab, ref: VMRef, name: str, description: str,
                     ran: list[str]) -> None:
    """Take the snapshot ``name`` unless it is there; one taken before a stage that has run
    since (e.g. a stage added to the profile ahead of it) is taken again."""
    if name in lab_obj.snapshots(ref):
        if not ran:
            return
        lab_obj.driver.snapshot_delete(ref, name)
        lab_obj.progress.step(f"deleted snapshot {name!r}: it was taken before {ran[-1]} "
                              "ran; taking it again")
    lab_obj.take_snapshot(ref, name, description)

"""Stage fingerprints: what changed in a lab's stages since they ran.

A stage's plan hash is a SHA-256 over its plan (every command it runs and every file it
writes, as `vmlab plan` records them: secrets as placeholders naming them, never their
values), whether it reboots, and the profile's platform and OpenStack release. Its
fingerprint chains the hash with the fingerprint of the stage before it, as image layers
do: a change in one stage changes the fingerprint of every later one. Because stages never
branch on guest output, equal fingerprints mean the stage would run exactly what it ran.

A stage whose fingerprint differs from the one recorded when it ran is *changed* when its
own plan hash differs too, *stale* when only an earlier stage changed.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Literal

from vmlab.plan import format_stage, plan
from vmlab.profile import LoadedProfile
from vmlab.statemodel import StageRecord

if TYPE_CHECKING:
    from vmlab.statemodel import LabState

Drift = Literal["unchanged", "changed", "stale", "unknown"]


@dataclass(frozen=True)
class StagePrint:
    stage: str
    #: This stage's plan alone.
    plan_hash: str
    #: The plan hash chained with the previous stage's fingerprint.
    fingerprint: str
    #: The plan as text (secrets masked), what `vmlab diff` compares.
    text: str


def _sha256(data: object) -> str:
    encoded = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def plan_text(stage: dict) -> str:
    """One planned stage as text: its name, whether it reboots, and its steps."""
    lines = [f"stage {stage['stage']}"] + format_stage(stage)
    return "\n".join(lines) + "\n"


def stage_prints(lab: str, loaded: LoadedProfile) -> list[StagePrint]:
    """The fingerprint of every stage of the profile, in order."""
    profile = loaded.profile
    inputs = {"platform": profile.platform, "release": profile.openstack.release}
    prints: list[StagePrint] = []
    previous = ""
    for stage in plan(lab, loaded):
        own = _sha256({"stage": stage["stage"], "reboot": stage["reboot"],
                       "install": stage["install"], "verify": stage["verify"], **inputs})
        fingerprint = _sha256({"plan": own, "previous": previous})
        prints.append(StagePrint(stage["stage"], own, fingerprint, plan_text(stage)))
        previous = fingerprint
    return prints


def drift(record: StageRecord, now: StagePrint | None) -> Drift | None:
    """How a stage that ran compares with its plan now (None: it is pending)."""
    if record.status == "pending":
        return None
    if record.fingerprint is None or now is None:
        return "unknown"
    if record.fingerprint == now.fingerprint:
        return "unchanged"
    return "changed" if record.plan_hash != now.plan_hash else "stale"


def drifts(records: Iterable[StageRecord], prints: list[StagePrint]) -> dict[str, Drift | None]:
    by_name = {p.stage: p for p in prints}
    return {r.name: drift(r, by_name.get(r.name)) for r in records}


def first_changed(records: Iterable[StageRecord], prints: list[StagePrint]) -> str | None:
    """The first stage that ran and would now run something else (changed, or stale after
    a stage was added or removed before it); None when nothing changed."""
    for name, kind in drifts(records, prints).items():
        if kind in ("changed", "stale"):
            return name
    return None


def lab_prints(state: "LabState") -> tuple[list[StagePrint] | None, str | None]:
    """The fingerprints of a lab's stages as its profile is now, or None and why not (the
    profile is gone or no longer valid: what status and diff say instead)."""
    from vmlab.errors import VmlabError
    from vmlab.labprofile import load_lab_profile

    try:
        return stage_prints(state.lab, load_lab_profile(state)), None
    except VmlabError as exc:
        return None, exc.message


def mark_report(report: dict, state: "LabState") -> None:
    """Add each stage's drift to a status report (rows' `drift`; `changed`: the first stage
    that changed, which provision rolls back to; `drift_unknown`: why there is none)."""
    prints, why = lab_prints(state)
    if prints is None:
        report["drift_unknown"] = why
        return
    kinds = drifts(state.stages, prints)
    for row in report.get("stages", []):
        row["drift"] = kinds.get(row["name"])
    report["changed"] = first_changed(state.stages, prints)


def lab_diff(lab: str | None, stage: str | None = None) -> list[dict]:
    """Per stage of a lab (or only ``stage``): how it compares with what it ran, and the
    unified diff of the plan it ran against the plan as the profile gives it now."""
    import difflib

    from vmlab.paths import resolve_lab_name
    from vmlab.labprofile import load_lab_profile
    from vmlab.state import LabFiles

    files = LabFiles(resolve_lab_name(lab))
    state = files.load()
    records = [state.stage(stage)] if stage is not None else state.stages
    prints = {p.stage: p for p in stage_prints(state.lab, load_lab_profile(state))}
    kinds = drifts(state.stages, list(prints.values()))
    rows = []
    for record in records:
        ran_file = files.plans / f"{record.name}.txt"
        ran = ran_file.read_text() if record.fingerprint and ran_file.is_file() else None
        now = prints[record.name].text if record.name in prints else ""
        diff = "" if ran is None else "".join(difflib.unified_diff(
            ran.splitlines(keepends=True), now.splitlines(keepends=True),
            fromfile=f"{record.name} (as it ran, {record.started})",
            tofile=f"{record.name} (now)"))
        rows.append({"stage": record.name, "status": record.status,
                     "drift": kinds.get(record.name), "recorded": ran is not None,
                     "diff": diff})
    return rows

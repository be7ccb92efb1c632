"""What `vmlab status` and `vmlab snapshots` show: plain data, for the screen or --json.

Both work from the lab's state as JSON data and the reading part of its driver
(vmlab.labview): one connection, the VM looked up by name, without the profile, pydantic or
the driver's builders. Status reads the profile only when the lab's drift key says a stage's
plan may have changed since it ran (vmlab.driftkey), to mark the changed stages."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vmlab.errors import EXIT_OK, VmlabError
from vmlab.labview import lab_vm, open_reader
from vmlab.names import COMPLETE
from vmlab.paths import resolve_lab_name
from vmlab.state import LabFiles


def snapshot_rows(lab: str | None) -> list[dict[str, Any]]:
    """The snapshots of lab ``lab`` (default: the only lab), parents first."""
    files = LabFiles(resolve_lab_name(lab))
    state = files.read()
    with open_reader(state["hypervisor"]) as reader:
        ref = lab_vm(reader, files.lab, state["vm_name"])
        snapshots = reader.snapshot_list(ref)
    return [{"name": s.name, "parent": s.parent, "created": s.created.isoformat(),
             "state": s.state.value, "current": s.current, "description": s.description}
            for s in snapshots]


@dataclass
class LabStatus:
    """One lab's report, and the exit code of what kept it from being shown in full (0: it
    was shown in full)."""

    report: dict[str, Any]
    exit_code: int = EXIT_OK


def status(name: str) -> LabStatus:
    """Everything `vmlab status` shows of one lab. A problem is reported, not raised: a state
    file that cannot be used gives the error and its way out; a hypervisor that cannot be
    reached still leaves what the state file knows."""
    files = LabFiles(name)
    try:
        state = files.read()
    except VmlabError as exc:
        return LabStatus({"lab": name, **_error(exc)}, exc.exit_code)
    busy = files.busy()
    report = recorded(state)
    report["busy"] = busy
    try:
        with open_reader(state["hypervisor"]) as reader:
            report.update(on_hypervisor(reader, state))
    except VmlabError as exc:
        report.update(power="unknown", **_error(exc))
        mark_drift(report, files, state)
        report["next"] = next_step(state, busy, report.get("changed"))
        return LabStatus(report, exc.exit_code)
    mark_drift(report, files, state)
    if "problem" not in report:
        report["next"] = next_step(state, busy, report.get("changed"))
    return LabStatus(report)


def mark_drift(report: dict[str, Any], files: LabFiles, state: dict[str, Any]) -> None:
    """Each stage's drift in the report (see vmlab.fingerprint.mark_report): from the state
    alone while its drift key holds (stat calls, nothing loaded), else from the stages'
    fingerprints worked out from the profile (the model, the profile and the templates)."""
    from vmlab.driftkey import unchanged_drifts

    kinds = unchanged_drifts(state)
    if kinds is None:
        from vmlab.fingerprint import mark_report

        mark_report(report, files.load())
        return
    for row in report.get("stages", []):
        row["drift"] = kinds.get(row["name"])
    report["changed"] = None


def _error(exc: VmlabError) -> dict[str, Any]:
    return {"error": exc.message, "hint": exc.hint}


def recorded(state: dict[str, Any]) -> dict[str, Any]:
    """What the state file knows, without asking the hypervisor."""
    return {"lab": state["lab"], "profile": state["profile"],
            "profile_path": state["profile_path"], "driver": state["driver"],
            "uri": state["uri"], "vm": state["vm_name"], "acceleration": state["acceleration"],
            "created": datetime.fromisoformat(state["created"]).isoformat(),
            "snapshot_mode": state["snapshots"]["mode"],
            "stages": [dict(record) for record in state["stages"]]}


def on_hypervisor(reader: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Power, snapshots, console log and SSH endpoint, from the hypervisor in one look."""
    info: dict[str, Any] = {}
    seen = reader.glance(state["vm_name"], state["ssh"]["port"])
    if seen is None:
        info.update(power="missing",
                    problem=f"the VM {state['vm_name']!r} of lab {state['lab']!r} no longer "
                            "exists on the hypervisor",
                    next=f"remove what is left: vmlab destroy --lab {state['lab']}; then "
                         "create the lab again")
        return info
    snapshots = {s.name for s in seen.snapshots}
    info["stages"] = [dict(record, snapshot=record["name"] in snapshots)
                      for record in state["stages"]]
    info["power"] = seen.power.value
    info["complete"] = COMPLETE in snapshots
    info["console_log"] = seen.console_log
    if seen.endpoint is not None:
        endpoint = seen.endpoint
        info["ssh"] = {"host": endpoint.host, "port": endpoint.port,
                       "user": state["ssh"]["user"],
                       "via": f"{endpoint.jump[0]}@{endpoint.jump[1]}:{endpoint.jump[2]}"
                       if endpoint.jump else None}
    return info


def next_step(state: dict[str, Any], busy: dict[str, Any] | None = None,
              changed: str | None = None) -> str | None:
    """The command to run next; none while another vmlab works on the lab. ``changed``: the
    first stage whose plan changed since it ran."""
    if busy is not None:
        return None
    lab = state["lab"]
    if changed is not None:
        return (f"vmlab provision --lab {lab} (rolls back to {changed}, which changed since "
                f"it ran; `vmlab diff --lab {lab}` shows how)")
    stopped = [r for r in state["stages"] if r["status"] in ("failed", "running")]
    if stopped:  # a stage still 'running' with nobody holding the lock was cut short
        name = stopped[0]["name"]
        return f"vmlab rollback {name} --lab {lab} && vmlab resume --lab {lab}"
    if any(r["status"] != "done" for r in state["stages"]):
        return f"vmlab provision --lab {lab}"
    return None

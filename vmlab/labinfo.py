"""What `vmlab status` and `vmlab snapshots` show: plain data, for the screen or --json."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmlab.drivers.base import Driver, PowerState
from vmlab.errors import EXIT_OK, VmlabError
from vmlab.lab import COMPLETE, Lab, open_driver
from vmlab.state import LabFiles, LabState


def snapshot_rows(lab: Lab) -> list[dict[str, Any]]:
    ref = lab.ref()
    return [{"name": s.name, "parent": s.parent, "created": s.created.isoformat(),
             "state": s.state.value, "current": s.current, "description": s.description}
            for s in lab.driver.snapshot_list(ref)]


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
        state = files.load()
    except VmlabError as exc:
        return LabStatus({"lab": name, **_error(exc)}, exc.exit_code)
    from vmlab.fingerprint import mark_report

    busy = files.busy()
    report = recorded(state)
    report["busy"] = busy
    try:
        with open_driver(state.hypervisor) as driver:
            report.update(on_hypervisor(driver, state))
    except VmlabError as exc:
        report.update(power="unknown", **_error(exc))
        mark_report(report, state)
        report["next"] = next_step(state, busy, report.get("changed"))
        return LabStatus(report, exc.exit_code)
    mark_report(report, state)
    if "problem" not in report:
        report["next"] = next_step(state, busy, report.get("changed"))
    return LabStatus(report)


def _error(exc: VmlabError) -> dict[str, Any]:
    return {"error": exc.message, "hint": exc.hint}


def recorded(state: LabState) -> dict[str, Any]:
    """What the state file knows, without asking the hypervisor."""
    return {"lab": state.lab, "profile": state.profile, "profile_path": state.profile_path,
            "driver": state.driver, "uri": state.uri, "vm": state.vm_name,
            "acceleration": state.acceleration, "created": state.created.isoformat(),
            "snapshot_mode": state.snapshots.mode,
            "stages": [r.model_dump(mode="json") for r in state.stages]}


def on_hypervisor(driver: Driver, state: LabState) -> dict[str, Any]:
    """Power, snapshots, console log and SSH endpoint, from the hypervisor."""
    info: dict[str, Any] = {}
    ref = driver.find(state.vm_name)
    if ref is None:
        info.update(power="missing",
                    problem=f"the VM {state.vm_name!r} of lab {state.lab!r} no longer exists "
                            "on the hypervisor",
                    next=f"remove what is left: vmlab destroy --lab {state.lab}; then create "
                         "the lab again")
        return info
    power = driver.state(ref)
    snapshots = {s.name for s in driver.snapshot_list(ref)}
    info["stages"] = [dict(row, snapshot=row["name"] in snapshots)
                      for row in (r.model_dump(mode="json") for r in state.stages)]
    info["power"] = power.value
    info["complete"] = COMPLETE in snapshots
    info["console_log"] = driver.console_log_path(ref)
    if power == PowerState.RUNNING:
        endpoint = driver.ssh_endpoint(ref, state.ssh.port)
        info["ssh"] = {"host": endpoint.host, "port": endpoint.port, "user": state.ssh.user,
                       "via": f"{endpoint.jump[0]}@{endpoint.jump[1]}:{endpoint.jump[2]}"
                       if endpoint.jump else None}
    return info


def next_step(state: LabState, busy: dict[str, Any] | None = None,
              changed: str | None = None) -> str | None:
    """The command to run next; none while another vmlab works on the lab. ``changed``: the
    first stage whose plan changed since it ran."""
    if busy is not None:
        return None
    lab = state.lab
    if changed is not None:
        return (f"vmlab provision --lab {lab} (rolls back to {changed}, which changed since "
                f"it ran; `vmlab diff --lab {lab}` shows how)")
    stopped = [r for r in state.stages if r.status in ("failed", "running")]
    if stopped:  # a stage still 'running' with nobody holding the lock was cut short
        name = stopped[0].name
        return f"vmlab rollback {name} --lab {lab} && vmlab resume --lab {lab}"
    if state.pending():
        return f"vmlab provision --lab {lab}"
    return None


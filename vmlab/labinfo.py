"""What `vmlab status` and `vmlab snapshots` show: plain data, for the screen or --json."""
from __future__ import annotations

from typing import Any

from vmlab.drivers.base import PowerState
from vmlab.errors import NotFound
from vmlab.lab import COMPLETE, Lab


def snapshot_rows(lab: Lab) -> list[dict[str, Any]]:
    ref = lab.ref()
    return [{"name": s.name, "parent": s.parent, "created": s.created.isoformat(),
             "state": s.state.value, "current": s.current, "description": s.description}
            for s in lab.driver.snapshot_list(ref)]


def status(lab: Lab) -> dict[str, Any]:
    state = lab.state
    info: dict[str, Any] = {
        "lab": lab.name, "profile": state.profile, "profile_path": state.profile_path,
        "driver": state.driver, "uri": state.uri, "vm": state.vm_name,
        "acceleration": state.acceleration, "created": state.created.isoformat(),
        "snapshot_mode": lab.loaded.profile.snapshots.mode,
        "stages": [r.model_dump(mode="json") for r in state.stages],
    }
    try:
        ref = lab.ref()
    except NotFound as exc:
        info.update(power="missing", problem=exc.message, next=exc.hint)
        return info
    power = lab.driver.state(ref)
    snapshots = {s.name for s in lab.driver.snapshot_list(ref)}
    for row in info["stages"]:
        row["snapshot"] = row["name"] in snapshots
    info["power"] = power.value
    info["complete"] = COMPLETE in snapshots
    info["console_log"] = lab.driver.console_log_path(ref)
    if power == PowerState.RUNNING:
        endpoint = lab.driver.ssh_endpoint(ref, lab.loaded.profile.ssh.port)
        info["ssh"] = {"host": endpoint.host, "port": endpoint.port,
                       "user": lab.loaded.profile.ssh.user,
                       "via": f"{endpoint.jump[0]}@{endpoint.jump[1]}:{endpoint.jump[2]}"
                       if endpoint.jump else None}
    info["next"] = next_step(lab)
    return info


def next_step(lab: Lab) -> str | None:
    failed = [r for r in lab.state.stages if r.status == "failed"]
    if failed:
        name = failed[0].name
        return f"vmlab rollback {name} --lab {lab.name} && vmlab resume --lab {lab.name}"
    if lab.state.pending():
        return f"vmlab provision --lab {lab.name}"
    return None

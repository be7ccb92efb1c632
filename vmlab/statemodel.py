"""The model of a lab's state file (vmlab.state reads and writes the file): validated by
pydantic, migrated from schema versions 1 and 2. Imported only by the commands that change a lab
or meet a state file that is not exactly what vmlab writes (see vmlab.stateview)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmlab.errors import NotFound, VmlabError
from vmlab.names import LAB_NAME_RE
from vmlab.profile import (Hypervisor, LibvirtHypervisor, Snapshots, Ssh, VsphereHypervisor,
                           load_profile)
from vmlab.state import SCHEMA_VERSION

StageStatus = Literal["pending", "running", "done", "failed"]


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    status: StageStatus = "pending"
    attempts: int = 0
    started: datetime | None = None
    finished: datetime | None = None
    duration: float | None = None
    log: str | None = None
    error: str | None = None
    #: The chained fingerprint of the plan the stage last ran with, and the hash of its own
    #: plan alone (None: it has not run, or it ran before vmlab recorded them).
    fingerprint: str | None = None
    plan_hash: str | None = None


class LabState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    lab: str = Field(pattern=LAB_NAME_RE)
    profile: str
    profile_path: str
    driver: str
    uri: str
    #: The profile's hypervisor section when the lab was made: where its VM lives.
    hypervisor: Hypervisor
    ssh: Ssh
    snapshots: Snapshots
    #: The guest's distribution (None: a migrated version 1 lab whose profile is gone).
    platform: str | None = None
    vm_name: str
    vm_uuid: str | None = None
    acceleration: str | None = None
    created: datetime
    stages: list[StageRecord]
    #: What the stages' plans came from when they were last worked out (vmlab.driftkey):
    #: the key, None when a stage had changed since it ran (or it is not known), and the
    #: files it covers. `vmlab status` shows no stage as changed, without reading the
    #: profile, while the key of these files now is the same.
    drift_key: str | None = None
    drift_files: list[str] = Field(default_factory=list)

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise NotFound(f"lab {self.lab!r} has no stage {name!r}",
                       hint="stages: " + ", ".join(r.name for r in self.stages))

    def index(self, name: str) -> int:
        return [r.name for r in self.stages].index(self.stage(name).name)

    def pending(self) -> list[StageRecord]:
        return [r for r in self.stages if r.status != "done"]


def problems(raw: dict[str, Any]) -> LabState | list[str]:
    """The state ``raw`` holds (a version 1 or 2 state migrated), or what is wrong with it."""
    if raw.get("schema_version") == 1:
        raw = migrate_v1(raw)
    if raw.get("schema_version") == 2:
        raw = migrate_v2(raw)
    try:
        return LabState.model_validate(raw)
    except ValidationError as exc:
        return [_describe(error) for error in exc.errors()]


def _describe(error: Any) -> str:
    """One pydantic problem as `key: what is wrong (given: value)`."""
    key = ""
    for part in error["loc"]:
        if part in ("libvirt", "vsphere"):  # the union's branch tag, not a key
            continue
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    message = {"missing": "required key is missing",
               "extra_forbidden": "unknown key"}.get(error["type"], error["msg"])
    given = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden") and not isinstance(given, (dict, list)):
        message += f" (given: {given!r})"
    return f"{key or '(top level)'}: {message}"


def migrate_v1(raw: dict[str, Any]) -> dict[str, Any]:
    """A version 1 state, which recorded no connection settings, as version 2.

    They come from the lab's profile when it still loads and names the hypervisor the lab
    was made on; otherwise from the recorded URI, with the profile defaults for the rest
    (libvirt pool `vmlab`, SSH as root on port 22, offline snapshots). Written back as
    version 2 by the next command that saves the state.
    """
    from vmlab.profilefiles import lab_profile_source
    from vmlab.vmspec import hypervisor_uri

    data = dict(raw, schema_version=2)
    profile = None
    try:
        source, _ = lab_profile_source(str(raw.get("profile_path") or ""),
                                       str(raw.get("profile")))
        profile = load_profile(source).profile
    except (VmlabError, OSError, ValueError, RecursionError):
        pass
    if (profile is not None and profile.hypervisor.kind == raw.get("driver")
            and hypervisor_uri(profile.hypervisor) == raw.get("uri")):
        data.update(hypervisor=profile.hypervisor.model_dump(mode="json"),
                    ssh=profile.ssh.model_dump(mode="json"),
                    snapshots=profile.snapshots.model_dump(mode="json"),
                    platform=profile.platform)
        return data
    data.update(hypervisor=_hypervisor_from_uri(raw.get("driver"), raw.get("uri")),
                ssh=Ssh().model_dump(mode="json"),
                snapshots=Snapshots().model_dump(mode="json"), platform=None)
    return data


def migrate_v2(raw: dict[str, Any]) -> dict[str, Any]:
    """A version 2 state as version 3: its stages have no recorded fingerprint (unknown, so
    never reported as changed) until they run again."""
    return dict(raw, schema_version=3)


def _hypervisor_from_uri(driver: Any, uri: Any) -> dict[str, Any] | None:
    if driver == "libvirt" and isinstance(uri, str):
        return LibvirtHypervisor(kind="libvirt", uri=uri).model_dump(mode="json")
    if driver == "vsphere" and isinstance(uri, str):
        parsed = urlparse(uri)  # vsphere://user@host:port, as vmspec.hypervisor_uri writes it
        if parsed.hostname and parsed.username:
            return VsphereHypervisor(kind="vsphere", host=parsed.hostname,
                                     port=parsed.port or 443,
                                     user=parsed.username).model_dump(mode="json")
    return None  # validation then names the key

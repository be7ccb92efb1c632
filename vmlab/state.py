"""Per-lab state on disk: a JSON file written atomically, under a per-lab lock.

The hypervisor is the truth for the VM and its snapshots; this file records what only
vmlab knows: which profile built the lab, which stages ran and how they ended.
Layout of a lab directory::

    state.json      this model (schema_version)
    secrets.json    generated secrets, mode 0600
    id_ed25519      the lab's SSH key (0600) and id_ed25519.pub
    known_hosts     the guest's host key, recorded at first contact
    lock            the per-lab lock file (lock.info says who holds it)
    logs/           vmlab.log and one log per stage run
"""
from __future__ import annotations

import json
import os
import secrets as pysecrets
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import filelock
from pydantic import BaseModel, ConfigDict, ValidationError

from vmlab import paths
from vmlab.errors import LabLocked, NotFound, StateError

SCHEMA_VERSION = 1
StageStatus = Literal["pending", "running", "done", "failed"]


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


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


class LabState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    lab: str
    profile: str
    profile_path: str
    driver: str
    uri: str
    vm_name: str
    vm_uuid: str | None = None
    acceleration: str | None = None
    created: datetime
    stages: list[StageRecord]

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


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` so that readers see the old or the new file, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LabFiles:
    """The files of one lab."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self.root = paths.lab_dir(lab)

    state = property(lambda self: self.root / "state.json")
    secrets = property(lambda self: self.root / "secrets.json")
    ssh_key = property(lambda self: self.root / "id_ed25519")
    known_hosts = property(lambda self: self.root / "known_hosts")
    logs = property(lambda self: self.root / "logs")
    lock_file = property(lambda self: self.root / "lock")
    lock_info = property(lambda self: self.root / "lock.info")

    def exists(self) -> bool:
        return self.state.is_file()

    # -- state -------------------------------------------------------------------
    def load(self) -> LabState:
        if not self.state.is_file():
            raise NotFound(f"lab {self.lab!r} does not exist",
                           hint="see `vmlab status` for the labs there are, or create one "
                                "with `vmlab create --profile NAME`")
        try:
            raw = json.loads(self.state.read_text())
        except (OSError, ValueError) as exc:
            raise StateError(f"the state file of lab {self.lab!r} is unreadable: {exc}",
                             hint=f"rebuild it from the hypervisor: vmlab recover --lab "
                                  f"{self.lab} --profile PROFILE") from exc
        version = raw.get("schema_version") if isinstance(raw, dict) else None
        if version != SCHEMA_VERSION:
            raise StateError(f"the state file of lab {self.lab!r} has schema version {version}, "
                             f"this vmlab reads version {SCHEMA_VERSION}",
                             hint="use the vmlab version that created the lab")
        try:
            return LabState.model_validate(raw)
        except ValidationError as exc:
            raise StateError(f"the state file of lab {self.lab!r} is not valid: "
                             f"{exc.errors()[0]['msg']}", hint=f"inspect {self.state}") from exc

    def save(self, state: LabState) -> None:
        write_atomic(self.state, state.model_dump_json(indent=2).encode() + b"\n")

    # -- secrets -------------------------------------------------------------------
    def load_secrets(self) -> dict[str, str]:
        if not self.secrets.is_file():
            return {}
        return json.loads(self.secrets.read_text())

    def ensure_secrets(self, names: tuple[str, ...] | list[str],
                       seed: str | None = None) -> dict[str, str]:
        """Secrets for ``names``: generated once per lab, reused ever after (0600)."""
        values = self.load_secrets()
        missing = [name for name in names if name not in values]
        if missing:
            for name in missing:
                values[name] = seed if seed is not None else pysecrets.token_urlsafe(18)
            write_atomic(self.secrets, json.dumps(values, indent=2).encode(), mode=0o600)
        return {name: values[name] for name in names}

    # -- lock ------------------------------------------------------------------------
    def lock(self, command: str) -> "LabLock":
        return LabLock(self, command)


class LabLock:
    """An exclusive per-lab lock; a lock left by a dead process is free (flock)."""

    def __init__(self, files: LabFiles, command: str) -> None:
        self.files = files
        self.command = command
        self._lock = filelock.FileLock(str(files.lock_file), timeout=0)

    def __enter__(self) -> "LabLock":
        self.files.root.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except filelock.Timeout:
            raise LabLocked(f"lab {self.files.lab!r} is busy: {self.holder()}",
                            hint="wait for that command to finish; a lock left by a process "
                                 "that died is released automatically") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.command,
                "since": now().isoformat()}
        write_atomic(self.files.lock_info, json.dumps(info).encode(), mode=0o644)
        return self

    def __exit__(self, *exc: object) -> None:
        self.files.lock_info.unlink(missing_ok=True)
        self._lock.release()

    def holder(self) -> str:
        try:
            info: dict[str, Any] = json.loads(self.files.lock_info.read_text())
        except (OSError, ValueError):
            return "another vmlab process holds its lock"
        return (f"`vmlab {info.get('command', '?')}` (pid {info.get('pid')} on "
                f"{info.get('host')}) holds its lock since {info.get('since')}")


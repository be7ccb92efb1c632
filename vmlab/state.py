"""Per-lab state on disk: a JSON file written atomically, under a per-lab lock.

The hypervisor is the truth for the VM and its snapshots; this file records what only
vmlab knows: which profile built the lab, which stages ran and how they ended, and what
commands on an existing lab need without reading the profile again (schema version 2): how
to reach the hypervisor, the SSH user and port, the snapshot mode and the guest's platform;
and the fingerprint of the plan each stage ran (schema version 3, see vmlab.fingerprint).
A profile edited into an invalid one, or moved, never stops status, rollback or destroy.
Layout of a lab directory::

    state.json      this model (schema_version)
    secrets.json    generated secrets, mode 0600
    id_ed25519      the lab's SSH key (0600) and id_ed25519.pub
    known_hosts     the guest's host key, recorded at first contact
    lock            the per-lab lock file (lock.info says who holds it)
    logs/           vmlab.log and one log per stage run
    plans/          the plan each stage last ran with (secrets masked), for `vmlab diff`
"""
from __future__ import annotations

import json
import os
import secrets as pysecrets
import socket
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlparse

import filelock
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vmlab import paths
from vmlab.errors import LabLocked, NotFound, StateError, VmlabError
from vmlab.names import LAB_NAME_RE
from vmlab.profile import (Hypervisor, LibvirtHypervisor, Snapshots, Ssh, VsphereHypervisor,
                           load_profile)

#: Version 2 added hypervisor, ssh, snapshots and platform; version 3 the stages' plan
#: fingerprints. Older files are migrated.
SCHEMA_VERSION = 3
OLDEST_SCHEMA_VERSION = 1
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


def _json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number", type(None): "null"}.get(type(value), "a value")


def _describe(error: dict[str, Any]) -> str:
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
    from vmlab.vmspec import hypervisor_uri

    data = dict(raw, schema_version=2)
    profile = None
    try:
        where = str(raw.get("profile_path") or "")
        profile = load_profile(where if where and Path(where).is_file()
                               else str(raw.get("profile"))).profile
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
    plans = property(lambda self: self.root / "plans")

    def exists(self) -> bool:
        return self.state.is_file()

    # -- state -------------------------------------------------------------------
    def load(self) -> LabState:
        if not self.state.is_file():
            raise NotFound(f"lab {self.lab!r} does not exist",
                           hint="see `vmlab status` for the labs there are, or create one "
                                "with `vmlab create --profile NAME`")
        raw = self._read_json()
        if not isinstance(raw, dict):
            self._broken(f"it holds {_json_kind(raw)}, not a JSON object of keys")
        version = raw.get("schema_version")
        if "schema_version" not in raw:
            self._broken("it has no schema_version key")
        if type(version) is not int:  # noqa: E721 - bool is an int subclass; refuse it too
            self._broken(f"its schema_version is {json.dumps(version)} ({_json_kind(version)}), "
                         "not a whole number")
        if version > SCHEMA_VERSION:
            raise StateError(
                f"the state file {self.state} was written by a newer vmlab (schema version "
                f"{version}); this vmlab reads versions {OLDEST_SCHEMA_VERSION} to "
                f"{SCHEMA_VERSION}",
                hint="use the vmlab version that created the lab; or, to give the lab up, "
                     f"drop its files: vmlab destroy --forget --lab {self.lab}")
        if version < OLDEST_SCHEMA_VERSION:
            self._broken(f"its schema_version {version} is not one vmlab ever wrote")
        if version == 1:
            raw = migrate_v1(raw)
        if raw["schema_version"] == 2:
            raw = migrate_v2(raw)
        try:
            return LabState.model_validate(raw)
        except ValidationError as exc:
            problems = [_describe(error) for error in exc.errors()]
            more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
            self._broken("; ".join(problems[:3]) + more)

    def _read_json(self) -> Any:
        try:
            text = self.state.read_bytes().decode("utf-8")
        except OSError as exc:
            raise StateError(f"the state file {self.state} cannot be read: {exc.strerror}",
                             hint=self.way_out()) from exc
        except UnicodeDecodeError:
            self._broken("it is not UTF-8 text")
        if not text.strip():
            self._broken("it is empty")
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            where = (f" at line {exc.lineno} column {exc.colno}"
                     if isinstance(exc, json.JSONDecodeError) else "")
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            self._broken(f"it is not valid JSON{where}: {reason}")

    def _broken(self, why: str) -> NoReturn:
        raise StateError(f"the state file {self.state} of lab {self.lab!r} is not usable: "
                         f"{why}", hint=self.way_out())

    def way_out(self) -> str:
        """What to do about a lab whose state file cannot be used: commands that work."""
        return (f"if its VM still exists, rebuild the file from the hypervisor:\n"
                f"  vmlab recover --lab {self.lab} --profile PROFILE\n"
                f"otherwise drop the lab's files (nothing on the hypervisor is touched):\n"
                f"  vmlab destroy --forget --lab {self.lab}")

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

    def busy(self) -> dict[str, Any] | None:
        """Who holds the lab's lock now ({pid, host, command, since}), or None.

        Read from lock.info, which the holder writes; the file of a process on this host
        that is gone (killed before it could remove it) means nobody.
        """
        try:
            info = json.loads(self.lock_info.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict):
            return None
        if info.get("host") == socket.gethostname() and not _alive(info.get("pid")):
            return None
        return info


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
        if not isinstance(info, dict):
            return "another vmlab process holds its lock"
        return f"{holder_text(info)} holds its lock"


def holder_text(info: dict[str, Any]) -> str:
    """Who holds a lab's lock, from its lock.info: command, pid, host and since when."""
    return (f"`vmlab {info.get('command', '?')}` (pid {info.get('pid')} on "
            f"{info.get('host')}, since {info.get('since')})")


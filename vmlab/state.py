"""Per-lab state on disk: a JSON file written atomically, under a per-lab lock.

The hypervisor is the truth for the VM and its snapshots; this file records what only
vmlab knows: which profile built the lab, which stages ran and how they ended, and what
commands on an existing lab need without reading the profile again (schema version 2): how
to reach the hypervisor, the SSH user and port, the snapshot mode and the guest's platform;
and the fingerprint of the plan each stage ran, with the key that tells `vmlab status` when
none can have changed (schema version 3, see vmlab.fingerprint and vmlab.driftkey).
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
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from vmlab import paths
from vmlab.errors import LabLocked, NotFound, StateError

if TYPE_CHECKING:
    from vmlab.statemodel import LabState

#: Version 2 added hypervisor, ssh, snapshots and platform; version 3 the stages' plan
#: fingerprints. Older files are migrated.
SCHEMA_VERSION = 3
OLDEST_SCHEMA_VERSION = 1


def __getattr__(name: str) -> Any:
    """The model (vmlab.statemodel, which imports pydantic) only when asked for by name."""
    if name in ("LabState", "StageRecord", "StageStatus", "migrate_v1", "migrate_v2"):
        from vmlab import statemodel

        return getattr(statemodel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


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
        """The validated state (a version 1 or 2 state migrated to version 3)."""
        from vmlab.statemodel import problems

        result = problems(self._read_checked())
        if isinstance(result, list):
            more = f" (and {len(result) - 3} more)" if len(result) > 3 else ""
            self._broken("; ".join(result[:3]) + more)
        return result

    def read(self) -> dict[str, Any]:
        """The state as JSON data, as ``load().model_dump(mode="json")`` gives it, for the
        commands that only read it: without pydantic when the file is what vmlab writes
        (vmlab.stateview), else through the model, whose errors are the same as load's."""
        from vmlab.stateview import plain

        raw = self._read_checked()
        data = plain(raw) if raw["schema_version"] == SCHEMA_VERSION else None
        return data if data is not None else self.load().model_dump(mode="json")

    def _read_checked(self) -> dict[str, Any]:
        """The state file's JSON object, of a schema version this vmlab reads."""
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
        return raw

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
            import secrets as pysecrets

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
        import socket

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
        import filelock

        self._filelock = filelock
        self._lock = filelock.FileLock(str(files.lock_file), timeout=0)

    def __enter__(self) -> "LabLock":
        self.files.root.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except self._filelock.Timeout:
            raise LabLocked(f"lab {self.files.lab!r} is busy: {self.holder()}",
                            hint="wait for that command to finish; a lock left by a process "
                                 "that died is released automatically") from None
        import socket

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


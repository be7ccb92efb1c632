"""The drift key: whether a lab's stage plans can have changed since they were worked out,
from stat calls alone.

Knowing which stages changed (vmlab.fingerprint) takes the profile, pydantic and the
templates: more than all the rest of `vmlab status`. Yet the plans change only when a file
they come from changes: a file of the lab's profile chain (the profile and the files it
extends, and the places a profile name would be found first, were a file put there), or
vmlab itself (its version, its stages and templates). The key is a hash of those files'
paths, mtimes and sizes; provisioning records it with the fingerprints, and only when no
stage had changed. While the key of the same files now is the same, status shows no stage
as changed without loading anything; when it differs (an edit, even one that changed
nothing, or an upgrade), status works the fingerprints out. Commands that run stages
always work them out: the key is only status's shortcut.

Stdlib only: `vmlab status` imports this on every run.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import vmlab

if TYPE_CHECKING:
    from vmlab.profile import LoadedProfile

#: vmlab's own files the plans come from, under the installed package.
PACKAGE = Path(vmlab.__file__).parent
CODE_DIRS = ("stages", "platforms", "templates")
#: A file whose mtime is this close to (or after) the moment provisioning began reading
#: the profile may have changed while it read: no key is recorded then (file systems
#: stamp mtimes coarsely, from a few milliseconds to two seconds).
SETTLE_NS = 2_000_000_000


def _stat(path: str) -> list[Any]:
    try:
        found = os.stat(path)
    except OSError:  # gone (or never there: a place a name would be found first)
        return [path, None, None]
    return [path, found.st_mtime_ns, found.st_size]


def _code_stats() -> list[list[Any]]:
    """[relative path, mtime_ns, size] of every file under vmlab's stages, platform tables and templates
    (a file added, removed or edited changes the list; compiled bytecode is left out)."""
    rows: list[list[Any]] = []
    for name in CODE_DIRS:
        for top, dirs, files in os.walk(PACKAGE / name):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for file in sorted(files):
                if file.endswith(".pyc"):
                    continue
                path = os.path.join(top, file)
                row = _stat(path)
                rows.append([os.path.relpath(path, PACKAGE), row[1], row[2]])
    return rows


def _hash(files: list[list[Any]], code: list[list[Any]]) -> str:
    data = {"vmlab": vmlab.__version__, "files": files, "code": code}
    return hashlib.sha256(json.dumps(data, separators=(",", ":")).encode()).hexdigest()


def key(files: list[str]) -> str:
    """The drift key of ``files`` and of vmlab itself, as they are now."""
    return _hash([_stat(path) for path in files], _code_stats())


def settled_key(files: list[str], since_ns: int) -> str | None:
    """The key, or None when a file changed at or after ``since_ns`` (time.time_ns() when
    the profile was about to be read), give or take SETTLE_NS: what was read may not be
    what the key would describe."""
    stats, code = [_stat(path) for path in files], _code_stats()
    newest = max((row[1] for row in stats + code if row[1] is not None), default=0)
    return _hash(stats, code) if newest < since_ns - SETTLE_NS else None


def watched_files(loaded: LoadedProfile, profile_path: str, profile: str) -> list[str]:
    """The files a lab's plans come from (besides vmlab's): the profile path its state
    records, every file of the chain loaded from it, and each place that was looked in
    first for a profile or base given by name (a file put there would be found instead)."""
    from vmlab.profilefiles import (lab_profile_source, looks_like_path, named_candidates,
                                    profile_dirs)

    watched = [profile_path]
    source, by_name = lab_profile_source(profile_path, profile)
    if by_name and not looks_like_path(source):  # found by name
        watched += _looked_before(named_candidates(profile, profile_dirs()), loaded.path)
    for index, file in enumerate(loaded.chain):
        watched.append(str(file))
        base = loaded.raw[index].get("extends") if index < len(loaded.raw) else None
        if (isinstance(base, str) and base and not looks_like_path(base)
                and index + 1 < len(loaded.chain)):
            places = named_candidates(base, [file.parent, *profile_dirs()])
            watched += _looked_before(places, loaded.chain[index + 1])
    return list(dict.fromkeys(watched))


def _looked_before(candidates: list[Path], found: Path) -> list[str]:
    """The candidates looked at before the one that resolves to ``found``."""
    before: list[str] = []
    for candidate in candidates:
        if os.path.realpath(candidate) == os.path.realpath(found):
            break
        before.append(str(candidate))
    return before


def unchanged_drifts(state: dict[str, Any]) -> dict[str, str | None] | None:
    """Each stage's drift (as vmlab.fingerprint.drift gives it) when the recorded key holds,
    from the state alone: no stage changed, so a stage that ran is unchanged (unknown when
    it ran before vmlab recorded fingerprints) and a pending one has none. None when the
    key is missing or differs: only the fingerprints can tell."""
    recorded = state.get("drift_key")
    if not recorded or key(state.get("drift_files") or []) != recorded:
        return None
    return {record["name"]: None if record["status"] == "pending"
            else "unknown" if record.get("fingerprint") is None else "unchanged"
            for record in state["stages"]}

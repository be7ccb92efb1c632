"""Where profiles are, how one file is read, and how a profile stacks on its bases.

A profile is named (``demo``) or given as a path. A name is looked up in the user's
profiles dir first, then in the shipped ``profiles/``: a user's own ``demo.yaml`` overrides
the shipped one (and may still ``extends: demo`` to build on it). ``vmlab profiles`` lists
every file with the same rule, marking the shadowed ones.

Reading is bounded (size, nesting, integers: vmlab.safeyaml) and every failure is a
ProfileError naming the file, never a traceback. ``extends: base`` deep-merges a profile
onto its base (mappings merge, lists and scalars replace).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vmlab import safeyaml
from vmlab.errors import ProfileError
from vmlab.paths import shipped_profiles_dir, user_profiles_dir

SUFFIXES = (".yaml", ".yml")
#: Profiles are a few kilobytes; 1 MiB leaves room for long script stages and parses in a
#: tenth of a second with libyaml (a 50 MB file took minutes before this cap).
MAX_PROFILE_BYTES = 1024 * 1024


def profile_dirs() -> list[Path]:
    """Where profile names are looked up, in order: the user's own profiles win."""
    return [user_profiles_dir(), shipped_profiles_dir()]


def looks_like_path(name_or_path: str) -> bool:
    return (os.sep in name_or_path or name_or_path.startswith("~")
            or name_or_path.endswith(SUFFIXES))


def lab_profile_source(profile_path: str, profile: str) -> tuple[str, bool]:
    """Where an existing lab's profile is read from, for every reader of it (running its
    stages, migrating an old state file, the drift key's files): the file its state
    records while that file is there (valid or not: a broken file is reported, never
    silently replaced by another), else the profile's name as ``--profile NAME`` finds it
    (the file was moved). Second: whether it is that name."""
    if profile_path and Path(profile_path).is_file():
        return profile_path, False
    return profile, True


def find_profile(name_or_path: str) -> Path:
    """The file of a profile given by name or path; ProfileError naming where it looked."""
    if looks_like_path(name_or_path):
        return _existing_file(_expand(name_or_path), shown=name_or_path)
    for candidate in named_candidates(name_or_path, profile_dirs()):
        if os.path.lexists(candidate):
            return _existing_file(candidate, shown=str(candidate))
    known = ", ".join(sorted({entry.name for entry in list_profiles()})) or "none"
    raise ProfileError(
        f"no profile named {name_or_path!r}",
        hint=f"known profiles: {known}; looked in " + ", ".join(str(d) for d in profile_dirs()))


def find_base(name: str, extending: Path) -> Path:
    """The file ``extends: name`` in ``extending`` means.

    A path is relative to the extending file's folder. A bare name is a sibling file first,
    then a profile by that name; the extending file itself is skipped, so a user's
    ``demo.yaml`` can extend the shipped ``demo``.
    """
    if looks_like_path(name):
        path = _expand(name)
        return _existing_file(path if path.is_absolute() else extending.parent / path,
                              shown=name)
    me = extending.resolve()
    for candidate in named_candidates(name, [extending.parent, *profile_dirs()]):
        if os.path.lexists(candidate) and not (candidate.is_file() and candidate.resolve() == me):
            return _existing_file(candidate, shown=str(candidate))
    return find_profile(name)  # raises: no profile of that name


def _expand(path: str) -> Path:
    try:
        return Path(path).expanduser()
    except RuntimeError:  # ~user of no such user: the path as written
        return Path(path)


def named_candidates(name: str, directories: list[Path]) -> list[Path]:
    """The files a profile name may be, in the order they are looked at."""
    return [directory / f"{name}{suffix}" for directory in directories for suffix in SUFFIXES]


def _existing_file(path: Path, shown: str) -> Path:
    if path.is_file():
        return path.resolve()
    if path.is_dir():
        raise ProfileError(f"profile {shown} is a directory, not a profile file",
                           problems=[f"{path}: is a directory"],
                           hint="give the .yaml file inside it, or a profile name")
    if os.path.lexists(path):
        raise ProfileError(f"profile {shown} is not a regular file",
                           problems=[f"{path}: not a regular file (a device, pipe or "
                                     "broken link)"],
                           hint="give a .yaml file")
    raise ProfileError(f"profile file {shown} does not exist",
                       hint="give an existing .yaml file or a profile name (`vmlab profiles`)")


@dataclass(frozen=True)
class ProfileEntry:
    """A profile file found in a profile dir, and whether its name resolves to it."""

    name: str
    path: Path
    source: str  # "user" or "shipped"
    #: The file ``--profile NAME`` loads instead of this one (None: this one is loaded).
    shadowed_by: Path | None = None


def list_profiles() -> list[ProfileEntry]:
    """Every profile file in the profile dirs, by name; for a name found more than once,
    the one the name resolves to (find_profile's rule) first, the shadowed ones after."""
    entries: list[ProfileEntry] = []
    winner: dict[str, Path] = {}
    for directory, source in zip(profile_dirs(), ("user", "shipped")):
        try:
            paths = [p for p in directory.iterdir() if p.suffix in SUFFIXES]
        except OSError:  # missing or unreadable: nothing there to list
            continue
        # the order find_profile tries: NAME.yaml before NAME.yml
        for path in sorted(paths, key=lambda p: (SUFFIXES.index(p.suffix), p.name)):
            name = path.stem
            entries.append(ProfileEntry(name, path, source, winner.get(name)))
            winner.setdefault(name, path)
    return sorted(entries, key=lambda e: (e.name, e.shadowed_by is not None))


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a profile file; ProfileError naming the file (and line) otherwise."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PROFILE_BYTES + 1)
    except IsADirectoryError:
        raise ProfileError(f"{path}: is a directory, not a profile file",
                           problems=[f"{path}: is a directory"]) from None
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}",
                           problems=[f"{path}: cannot read: {exc.strerror}"]) from exc
    if len(raw) > MAX_PROFILE_BYTES:
        raise ProfileError(f"{path}: is larger than {MAX_PROFILE_BYTES // 1024} KiB; a profile "
                           "is a few kilobytes of YAML",
                           problems=[f"{path}: larger than {MAX_PROFILE_BYTES} bytes"],
                           hint="is this the right file? move large scripts to files the "
                                "stages copy")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        where = f"{path}:{line}"
        raise ProfileError(f"{where}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                           f"{exc.start})", problems=[f"{where}: not UTF-8 text"],
                           hint="save the file as UTF-8") from None
    try:
        data = safeyaml.load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ProfileError(f"{where}: invalid YAML: {exc.problem or exc.context}",
                           problems=[f"{where}: {exc.problem or exc.context}"],
                           hint="fix the YAML at that line") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: invalid YAML: {exc}",
                           problems=[f"{path}: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a mapping of keys, not {type(data).__name__}",
                           problems=[f"{path}: (top level): expected a mapping"])
    return data


# -- extends: a profile on its bases ---------------------------------------------------

#: Keys that select a variant: a mapping that changes one of them replaces its base.
_DISCRIMINATORS = ("kind", "method")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not any(
                tag in value and value[tag] != merged[key].get(tag) for tag in _DISCRIMINATORS):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def resolve_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """[(file, raw data)] from the given file down to its last base."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    current: Path | None = path
    while current is not None:
        if any(current == seen for seen, _ in chain):
            cycle = " -> ".join(str(p) for p, _ in chain) + f" -> {current}"
            raise ProfileError(f"profiles extend each other in a cycle: {cycle}",
                               problems=[f"{chain[-1][0]}: extends: cycle {cycle}"],
                               hint="remove one of the `extends:` keys")
        data = read_yaml(current)
        chain.append((current, data))
        base = data.get("extends")
        if base is None:
            current = None
        elif not isinstance(base, str) or not base:
            raise ProfileError(f"{current}: extends: expected a profile name",
                               problems=[f"{current}: extends: expected a profile name or path"])
        else:
            try:
                current = find_base(base, extending=current)
            except ProfileError as exc:
                raise ProfileError(f"{current}: extends: {exc.message}",
                                   problems=[f"{current}: extends: {exc.message}"],
                                   hint=exc.hint) from None
    return chain


def file_defining(loc: list[Any], chain: list[tuple[Path, dict[str, Any]]]) -> Path:
    """The most-derived file whose raw data holds the longest prefix of ``loc``."""
    best, best_depth = chain[0][0], -1
    for path, data in chain:
        node: Any = data
        depth = 0
        for part in loc:
            if isinstance(node, dict) and part in node:
                node, depth = node[part], depth + 1
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node, depth = node[part], depth + 1
            else:
                break
        if depth > best_depth:
            best, best_depth = path, depth
    return best


def format_loc(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text

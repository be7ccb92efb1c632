"""Profiles fuzzed with hypothesis: whatever the YAML, a clear error naming the file and,
where the problem has one, the key, never a traceback."""
from __future__ import annotations

import re
from typing import Any

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from vmlab.errors import ProfileError
from vmlab.paths import shipped_profiles_dir
from vmlab.profile import load_profile

KEYS = ["name", "extends", "hypervisor", "install", "vm", "ssh", "stages", "snapshots",
        "platform", "openstack", "secrets", "kind", "uri", "method", "nics", "role",
        "network", "subnet", "address", "cpus", "memory_mib", "mode", "run", "hostname"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6),
                    st.text(max_size=12), st.sampled_from(
                        ["libvirt", "vsphere", "image", "kickstart", "user", "nat", "provider",
                         "management", "192.168.70.0/24", "10.0.2.15", "offline", "demo"]))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=5)),
    max_leaves=25)

MISSING = "required key is missing"
_PART = re.compile(r"([a-z_]+)|\[(\d+)\]")


def key_parts(key: str) -> list[str | int] | None:
    """``vm.nics[0].subnet`` -> ["vm", "nics", 0, "subnet"]; None if not a key path."""
    parts: list[str | int] = []
    for index, piece in enumerate(key.split(".")):
        matches = list(_PART.finditer(piece))
        if not matches or "".join(m.group(0) for m in matches) != piece \
                or matches[0].group(1) is None:
            return None
        if index and not parts:
            return None
        parts += [m.group(1) if m.group(1) else int(m.group(2)) for m in matches]
    return parts


def holds(data: Any, parts: list[str | int]) -> bool:
    """Whether ``data`` (a YAML document as read) has a value at the key path ``parts``."""
    for part in parts:
        if isinstance(part, str) and isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(part, int) and isinstance(data, list) and part < len(data):
            data = data[part]
        else:
            return False
    return True


def where_problem_is(text: str, documents: dict[str, Any]) -> str | None:
    """Why ``text`` ("FILE: KEY: message") does not point at its problem; None if it does.

    FILE is the profile or a profile it extends; KEY is in that file, or, for a missing
    key, its parent is and the key is not. A problem without a key ("(top level)") only
    for a document that is no mapping."""
    for name, data in documents.items():
        if not text.startswith(f"{name}: "):
            continue
        key, _, message = text[len(name) + 2:].partition(": ")
        if key == "(top level)":
            return None if not isinstance(data, dict) else "a mapping's problem has no key"
        parts = key_parts(key)
        if parts is None:
            return f"{key!r} is not a key path"
        if message == MISSING:
            if holds(data, parts) or not holds(data, parts[:-1]):
                return f"{key} is said to be missing from {name}"
        elif not holds(data, parts):
            return f"{name} has no key {key}"
        return None
    return "names none of the profile files"


@seed(20261124)
@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=documents)
def test_any_yaml_gives_a_profile_or_a_clear_error_at_its_file_and_key(tmp_path, document):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load_profile(str(path))
    except ProfileError as exc:
        assert str(path) in exc.message, exc.message
        # every problem names the file it is in (this one, or a shipped profile it extends:
        # `extends: demo` is among the sampled values) and the key in that file
        files = {str(path): document}
        files |= {str(p): yaml.safe_load(p.read_text())
                  for p in shipped_profiles_dir().glob("*.yaml")}
        for problem in exc.problems:
            assert where_problem_is(problem, files) is None, \
                f"{problem}: {where_problem_is(problem, files)}"
        if not exc.problems:  # one problem, told in the message: "FILE: [KEY: ]message"
            assert exc.message.startswith(f"{path}: "), exc.message
            rest = exc.message[len(str(path)) + 2:]
            key = rest.split(": ")[0] if ": " in rest else None
            if key is not None and key_parts(key) is not None:
                assert holds(document, key_parts(key)), exc.message
            else:
                assert not isinstance(document, dict), exc.message

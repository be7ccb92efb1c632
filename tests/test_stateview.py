"""The state file read without pydantic (vmlab.stateview) agrees with the model: what it
accepts, the model accepts and gives back the same; every key of the model is checked."""
from __future__ import annotations

import copy
import json
import math
import random
from typing import Any

import pytest
from pydantic import BaseModel

from tests.handmade_labs import RUNNING, node_file, state_v3, vm_xml
from vmlab import stateview
from vmlab.profile import LibvirtHypervisor, Snapshots, Ssh, VsphereHypervisor
from vmlab.state import LabFiles
from vmlab.statemodel import LabState, StageRecord

TABLES = [(LabState, stateview.STATE), (StageRecord, stateview.STAGE),
          (LibvirtHypervisor, stateview.LIBVIRT), (VsphereHypervisor, stateview.VSPHERE),
          (Ssh, stateview.SSH), (Snapshots, stateview.SNAPSHOTS)]

#: Values a hand edit (or a bug) might leave in a key: of every JSON type, and edge cases
#: of the types the keys take.
ODD_VALUES: list[Any] = [
    None, "", "x", "vmlab", "a/b", "..", " ", "demo\n", 0, 1, 2, -1, 22, 65535, 65536, 1440,
    1441, True, False, 1.0, 2.5, math.nan, math.inf, [], {}, ["a"], {"kind": "libvirt"},
    "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.500000Z",
    "2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00.5Z", "2026-13-01T00:00:00Z",
    "2026-01-01", "2026-01-01T00:00:00", "offline", "live", "done", "failed", "running",
    "pending", "libvirt", "vsphere", "qemu:///system", "VMLAB_VSPHERE_PASSWORD",
]


def canonical_state() -> dict[str, Any]:
    """A state as LabFiles.save writes it, with a stage of every kind."""
    raw = state_v3("t1", "test:///x.xml", {"a": "done", "b": "failed", "c": "running",
                                           "d": "pending"})
    raw["stages"][0].update(started="2026-01-01T00:00:01Z", finished="2026-01-01T00:01:00Z",
                            duration=59.0, log="/logs/01-a-1.log")
    raw["stages"][1].update(error="boom", duration=0.5)
    raw["stages"][2].update(started="2026-01-01T00:02:00.250000Z")
    raw["stages"][0].update(fingerprint="ab" * 32, plan_hash="cd" * 32)
    raw["stages"][1].update(fingerprint="ef" * 32, plan_hash="01" * 32)
    raw.update(drift_key="23" * 32, drift_files=["/profiles/t1.yaml", "/profiles/base.yml"])
    return LabState.model_validate(raw).model_dump(mode="json")


def vsphere_state() -> dict[str, Any]:
    raw = canonical_state()
    raw.update(driver="vsphere", uri="vsphere://root@127.0.0.1:8989",
               hypervisor={"kind": "vsphere", "host": "127.0.0.1", "port": 8989,
                           "user": "root", "insecure": True, "datacenter": "DC0"})
    return LabState.model_validate(raw).model_dump(mode="json")


def model_reads(raw: Any) -> dict[str, Any] | None:
    try:
        return LabState.model_validate(copy.deepcopy(raw)).model_dump(mode="json")
    except Exception:
        return None


def as_text(data: Any) -> str:
    """JSON text, where 1 and 1.0 differ (as they do on screen and in --json)."""
    return json.dumps(data, sort_keys=True, default=str)


def paths_of(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path in ``data`` (list items by index)."""
    found = []
    items = data.items() if isinstance(data, dict) else enumerate(data) \
        if isinstance(data, list) else []
    for key, value in items:
        found.append(prefix + (key,))
        found += paths_of(value, prefix + (key,))
    return found


def with_value(data: dict[str, Any], path: tuple, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = copy.deepcopy(value)
    return changed


def without(data: dict[str, Any], path: tuple) -> dict[str, Any]:
    changed = copy.deepcopy(data)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def variants(base: dict[str, Any]) -> list[dict[str, Any]]:
    """``base`` with one key dropped, one key given each odd value, an unknown key added;
    and a few hundred with several changes at once."""
    found = []
    for path in paths_of(base):
        if isinstance(path[-1], str):
            found.append(without(base, path))
            found.append(with_value(base, path[:-1] + ("unknown",), 1))
        found += [with_value(base, path, value) for value in ODD_VALUES]
    chooser = random.Random(13)
    for _ in range(400):
        changed = base
        for _ in range(chooser.randint(2, 4)):
            path = chooser.choice(paths_of(changed))
            if isinstance(path[-1], str) and chooser.random() < 0.2:
                changed = without(changed, path)
            else:
                changed = with_value(changed, path, chooser.choice(ODD_VALUES))
        found.append(changed)
    return found


@pytest.mark.parametrize("model,table", TABLES, ids=[m.__name__ for m, _ in TABLES])
def test_the_reader_checks_exactly_the_keys_of_the_model_with_its_defaults(model: type[BaseModel],
                                                                          table: dict) -> None:
    assert set(table) == set(model.model_fields)
    for name, field in model.model_fields.items():
        default = table[name][1]
        if field.is_required():
            assert default is stateview.REQUIRED, name
        else:
            assert default == field.get_default(call_default_factory=True), name


@pytest.mark.parametrize("base", [canonical_state(), vsphere_state()], ids=["libvirt", "vsphere"])
def test_what_the_reader_accepts_the_model_reads_the_same(base: dict[str, Any]) -> None:
    accepted = rejected = 0
    for raw in variants(base):
        plain = stateview.plain(copy.deepcopy(raw))
        if plain is None:
            rejected += 1
            continue
        accepted += 1
        assert as_text(model_reads(raw)) == as_text(plain), as_text(raw)
    # the comparison means something only when both answers come up often
    assert accepted > 100 and rejected > 100, (accepted, rejected)


def test_every_state_vmlab_saves_is_read_without_the_model(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    for base in (canonical_state(), vsphere_state()):
        files = LabFiles("t1")
        files.save(LabState.model_validate(base))
        raw = json.loads(files.state.read_text())
        assert as_text(stateview.plain(raw)) == as_text(raw) == as_text(files.read())


def test_a_state_the_reader_leaves_to_the_model_reads_the_same_through_it(tmp_path,
                                                                          monkeypatch) -> None:
    """Times with an offset, a whole number as a duration: the model's reading, not None."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    raw = canonical_state()
    raw["created"] = "2026-01-01T00:00:00+00:00"
    raw["stages"][0]["duration"] = 59
    assert stateview.plain(raw) is None
    files = LabFiles("t1")
    files.root.mkdir(parents=True)
    files.state.write_text(json.dumps(raw))
    assert as_text(files.read()) == as_text(canonical_state())


@pytest.mark.parametrize("command", [["status", "--lab", "t1", "--json"], ["status"],
                                     ["snapshots", "--lab", "t1"],
                                     ["ssh-config", "--lab", "t1"],
                                     ["openrc", "admin", "--lab", "t1"]])
def test_commands_print_the_same_whether_the_model_or_the_reader_read_the_state(
        home, vmlab_cli, tmp_path, command) -> None:
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a", "b"], state=RUNNING))
    saved = LabState.model_validate(state_v3("t1", uri, {"a": "done", "b": "failed",
                                                         "keystone": "pending"}))
    home.lab("t1", saved.model_dump(mode="json"), secrets={"admin": "secret"})
    assert stateview.plain(json.loads((home.labs / "t1" / "state.json").read_text()))
    by_reader = vmlab_cli(*command)
    edited = saved.model_dump(mode="json") | {"created": "2026-01-01T00:00:00+00:00"}
    home.lab("t1", edited, secrets={"admin": "secret"})  # the same state, as a hand edit
    assert stateview.plain(edited) is None
    by_model = vmlab_cli(*command)
    assert by_reader.code == by_model.code == 0
    assert (by_reader.out, by_reader.err) == (by_model.out, by_model.err)
    if "--json" in command:  # the model's datetime, as status has always shown it
        assert json.loads(by_reader.out)["created"] == saved.created.isoformat()

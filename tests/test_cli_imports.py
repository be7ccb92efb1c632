"""The commands people type most load only what they need (issue 13 item 24: `vmlab status`
on a lab took longer than `kcli list vm`; importing pydantic and building the profile's
models alone took 0.3 s). Each command runs in a fresh interpreter, which then lists the
modules it loaded: a regression that pulls in pydantic, Fabric or the whole driver fails
here, long before a benchmark would notice."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.handmade_labs import RUNNING, node_file, state_v3, vm_xml, write_profile
from tests.lab_harness import REPO

#: Loaded by no command that only reads a lab.
NEVER = ("pydantic", "fabric", "paramiko", "invoke", "yaml", "rich", "pyVmomi", "filelock",
         "vmlab.profile", "vmlab.profilefiles", "vmlab.statemodel", "vmlab.lab", "vmlab.remote",
         "vmlab.stages.base", "vmlab.drivers.base", "vmlab.drivers.libvirt.driver",
         "vmlab.cli.progress", "vmlab.progress", "vmlab.fingerprint", "vmlab.plan")

RUN = """
import json, sys
from vmlab.cli import main
try:
    main(sys.argv[2:])
except SystemExit as exit_:
    code = exit_.code
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


def loaded(tmp_path: Path, *args: str) -> tuple[int, set[str]]:
    """Run `vmlab ARGS` in a new interpreter: its exit code and the modules it loaded."""
    report = tmp_path / "modules.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", RUN, str(report), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = json.loads(report.read_text())
    return result["code"], set(result["modules"])


def heavy(modules: set[str], *also: str) -> list[str]:
    prefixes = NEVER + also
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


@pytest.fixture
def lab(tmp_path: Path) -> None:
    """A running lab with OpenStack's secrets, its state as vmlab saves it: with the drift
    key of its profile as provisioning records it (the profile unchanged since)."""
    from vmlab import driftkey
    from vmlab.profile import load_profile
    from vmlab.state import LabFiles
    from vmlab.statemodel import LabState

    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a", "keystone"], state=RUNNING))
    profile = write_profile(tmp_path / "t1.yaml", uri)
    os.utime(profile, ns=(time.time_ns() - 3600 * 10**9,) * 2)
    state = state_v3("t1", uri, {"a": "done", "keystone": "pending"}, profile_path=str(profile))
    watched = driftkey.watched_files(load_profile(str(profile)), str(profile), "t1")
    state.update(drift_key=driftkey.settled_key(watched, time.time_ns()), drift_files=watched)
    assert state["drift_key"] is not None
    os.environ["XDG_STATE_HOME"] = str(tmp_path / "state")
    try:
        files = LabFiles("t1")
        files.save(LabState.model_validate(state))
    finally:
        del os.environ["XDG_STATE_HOME"]
    (files.root / "secrets.json").write_text(json.dumps({"admin": "secret"}))
    (files.root / "id_ed25519").write_text("not a real key\n")


def test_status_without_labs_loads_neither_pydantic_nor_libvirt(tmp_path: Path) -> None:
    code, modules = loaded(tmp_path, "status")
    assert code in (0, None)
    assert heavy(modules, "libvirt", "jinja2", "vmlab.drivers.libvirt") == []


@pytest.mark.parametrize("args", [["status", "--lab", "t1"], ["status", "--json"],
                                  ["snapshots", "--lab", "t1"], ["ssh-config", "--lab", "t1"]])
def test_commands_reading_a_lab_load_only_libvirt_and_its_reader(tmp_path: Path, lab: None,
                                                                  args: list[str]) -> None:
    code, modules = loaded(tmp_path, *args)
    assert code in (0, None)
    assert "vmlab.drivers.libvirt.reader" in modules  # it did ask the hypervisor
    assert heavy(modules, "jinja2") == []


def test_openrc_loads_the_template_engine_and_nothing_else_heavy(tmp_path: Path,
                                                                 lab: None) -> None:
    code, modules = loaded(tmp_path, "openrc", "admin", "--lab", "t1")
    assert code in (0, None)
    assert "jinja2" in modules
    assert heavy(modules, "libvirt", "vmlab.drivers", "vmlab.stages.catalogue") == []


def test_every_command_is_found_in_the_module_that_defines_it() -> None:
    """The lazy group imports a command's module by this table: a command missing from it,
    or listed under another module, would not be found when typed."""
    from vmlab.cli import cli
    from vmlab.cli.base import COMMAND_MODULES

    defined = {name: command.callback.__module__ for name, command in cli.commands.items()}
    assert defined == {name: f"vmlab.cli.{module}" for name, module in COMMAND_MODULES.items()}


def test_status_loads_only_the_lab_commands_module(tmp_path: Path) -> None:
    _, modules = loaded(tmp_path, "status")
    assert sorted(m for m in modules if m.startswith("vmlab.cli.")) == ["vmlab.cli.base",
                                                                        "vmlab.cli.labs"]

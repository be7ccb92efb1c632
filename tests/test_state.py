"""Lab state: atomic writes, the per-lab lock, secrets and keys on disk."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time

import pytest

from vmlab.errors import LabLocked, NotFound, StateError
from vmlab.profile import LibvirtHypervisor, Snapshots, Ssh
from vmlab.sshkeys import ensure_keypair
from vmlab.state import LabFiles, LabState, StageRecord, now, write_atomic


@pytest.fixture(autouse=True)
def state_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


def make_state(lab: str = "t1") -> LabState:
    return LabState(lab=lab, profile="demo", profile_path="demo", driver="libvirt",
                    uri="test:///x", hypervisor=LibvirtHypervisor(kind="libvirt", uri="test:///x"),
                    ssh=Ssh(), snapshots=Snapshots(), platform="debian12",
                    vm_name=f"vmlab-{lab}", created=now(),
                    stages=[StageRecord(name="a"), StageRecord(name="b")])


def test_state_round_trips_and_is_private():
    files = LabFiles("t1")
    files.save(make_state())
    loaded = files.load()
    assert [r.name for r in loaded.stages] == ["a", "b"]
    assert stat.S_IMODE(files.state.stat().st_mode) == 0o600


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    write_atomic(target, b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_missing_lab_is_not_found_with_a_hint():
    with pytest.raises(NotFound) as info:
        LabFiles("nope").load()
    assert "vmlab create" in info.value.hint


def test_unknown_schema_version_is_refused():
    files = LabFiles("t1")
    files.save(make_state())
    raw = json.loads(files.state.read_text())
    raw["schema_version"] = 99
    files.state.write_text(json.dumps(raw))
    with pytest.raises(StateError, match="schema version 99"):
        files.load()


def test_corrupt_state_file_is_a_clear_error():
    files = LabFiles("t1")
    files.root.mkdir(parents=True)
    files.state.write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON at line 1 column 2") as info:
        files.load()
    assert "vmlab recover --lab t1" in info.value.hint
    assert "vmlab destroy --forget --lab t1" in info.value.hint


def test_secrets_are_generated_once_private_and_reused():
    files = LabFiles("t1")
    first = files.ensure_secrets(["root", "admin"])
    assert len(set(first.values())) == 2 and all(len(v) >= 20 for v in first.values())
    assert stat.S_IMODE(files.secrets.stat().st_mode) == 0o600
    again = files.ensure_secrets(["root", "admin", "demo"])
    assert again["root"] == first["root"] and again["admin"] == first["admin"]
    assert "demo" in again


def test_seeded_secrets_use_the_given_value():
    assert LabFiles("t2").ensure_secrets(["root"], seed="123456") == {"root": "123456"}


def test_ssh_key_is_private_and_stable(tmp_path):
    key = tmp_path / "id_ed25519"
    public = ensure_keypair(key, comment="vmlab-t1")
    assert public.startswith("ssh-ed25519 ") and public.endswith(" vmlab-t1")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert ensure_keypair(key, comment="other") == public


HOLDER = textwrap.dedent("""\
    import sys, time
    from vmlab.state import LabFiles
    with LabFiles("t1").lock("provision"):
        print("locked", flush=True)
        time.sleep(60)
    """)


def test_second_command_on_a_locked_lab_is_refused_naming_the_holder(state_home):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE,
                              env={**os.environ, "XDG_STATE_HOME": str(state_home)}, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(LabLocked) as info:
            with LabFiles("t1").lock("status"):
                pass
        assert f"pid {holder.pid}" in info.value.message
        assert "vmlab provision" in info.value.message
        assert info.value.exit_code == 4
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # A lock left by a process that died is free again.
    deadline = time.monotonic() + 5
    while True:
        try:
            with LabFiles("t1").lock("status"):
                break
        except LabLocked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

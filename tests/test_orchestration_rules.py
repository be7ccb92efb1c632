"""The rules of provision, rollback, resume, recover and rebuild, in seconds: the real
orchestration on libvirt's test driver (one connection for the whole test, so what a command
does to the VM and its snapshots persists), the guest a scripted one reached through the
same GuestAccess seam as SSH (tests/scripted_guest.py)."""
from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.handmade_labs import RUNNING, Home, home, node_file, state_v3, vm_xml  # noqa: F401
from tests.scripted_guest import ScriptedGuest
from tests.test_create_order import SharedDriver  # one connection: what a command does persists
from vmlab import lab as labs
from vmlab.drivers.libvirt import LibvirtDriver
from vmlab.errors import NotOwned, StageFailed
from vmlab.rebuild import rebuild
from vmlab.reconcile import run_provision
from vmlab.recover import recover


def write_profile(path: Path, uri: str, *, reboot_b: bool = False) -> Path:
    path.write_text(textwrap.dedent(f"""\
        name: t1
        hypervisor: {{kind: libvirt, uri: "{uri}"}}
        install: {{method: image}}
        vm:
          nics:
            - {{role: provider, network: user, subnet: 10.0.2.0/24}}
        snapshots: {{mode: live}}
        stages:
          - {{name: a, run: ["echo a"]}}
          - {{name: b, run: ["echo b"], verify: ["test b"], reboot: {str(reboot_b).lower()}}}
          - {{name: c, run: ["echo c"]}}
        """))
    return path


@pytest.fixture
def lab(home: Home, tmp_path, monkeypatch):
    """Lab t1 (stages a, b, c, all pending) whose running VM has its first snapshot, as
    create leaves it."""
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a"], state=RUNNING))
    profile = write_profile(tmp_path / "t1.yaml", uri)
    state = state_v3("t1", uri, {"a": "pending", "b": "pending", "c": "pending"},
                     profile_path=str(profile))
    state["snapshots"] = {"mode": "live"}
    home.lab("t1", state)
    driver = SharedDriver(uri)
    monkeypatch.setattr(labs, "open_driver", lambda hypervisor: driver)
    monkeypatch.setattr("vmlab.recover.open_driver", lambda hypervisor: driver)
    yield {"home": home, "profile": profile, "uri": uri, "driver": driver,
           "guest": ScriptedGuest()}
    LibvirtDriver.close(driver)


def stage_commands(guest: ScriptedGuest) -> list[str]:
    return [c for c in guest.commands if c.startswith(("echo", "test"))]


def statuses(home: Home) -> dict[str, str]:
    state = json.loads((home.labs / "t1" / "state.json").read_text())
    return {s["name"]: s["status"] for s in state["stages"]}


def snapshot_names(driver: LibvirtDriver) -> set[str]:
    return {s.name for s in driver.snapshot_list(driver.find("vmlab-t1"))}


def test_provision_runs_each_stage_after_its_snapshot_and_returns_each_attempt(lab):
    result = run_provision("t1", guest=lab["guest"])
    assert stage_commands(lab["guest"]) == ["echo a", "echo b", "test b", "echo c"]
    assert [(a.stage, a.number, a.passed) for a in result.attempts] == [
        ("a", 1, True), ("b", 1, True), ("c", 1, True)]
    assert all(Path(a.log).is_file() for a in result.attempts)
    assert snapshot_names(lab["driver"]) == {"a", "b", "c", "complete"}
    assert statuses(lab["home"]) == {"a": "done", "b": "done", "c": "done"}


def test_a_failed_stage_stops_provision_and_is_returned_when_asked_not_to_raise(lab):
    lab["guest"].failures = {"echo b": 1}
    result = run_provision("t1", guest=lab["guest"], raise_failure=False)
    assert result.failed is not None and result.failed.stage == "b"
    assert [(a.stage, a.passed) for a in result.attempts] == [("a", True), ("b", False)]
    failure = result.attempts[-1].failure
    assert (failure["command"], failure["exit_code"]) == ("echo b", 7)
    assert "echo c" not in lab["guest"].commands
    assert statuses(lab["home"]) == {"a": "done", "b": "failed", "c": "pending"}


def test_resume_after_a_failure_runs_the_failed_stage_and_the_rest_only(lab):
    lab["guest"].failures = {"echo b": 1}
    with pytest.raises(StageFailed, match="stage 'b' failed"):
        run_provision("t1", guest=lab["guest"])
    lab["guest"].commands.clear()
    result = run_provision("t1", guest=lab["guest"])
    assert stage_commands(lab["guest"]) == ["echo b", "test b", "echo c"]
    assert [(a.stage, a.number) for a in result.attempts] == [("b", 2), ("c", 1)]


def test_rollback_reverts_deletes_later_snapshots_and_marks_the_stage_and_later_pending(lab):
    run_provision("t1", guest=lab["guest"])
    lab["guest"].waits.clear()
    labs.rollback("b", "t1", guest=lab["guest"])
    assert snapshot_names(lab["driver"]) == {"a", "b"}
    assert statuses(lab["home"]) == {"a": "done", "b": "pending", "c": "pending"}
    ref = lab["driver"].find("vmlab-t1")
    assert lab["driver"].state(ref).value == "running"
    assert lab["guest"].waits == [None]  # the guest answered again before rollback returned
    lab["guest"].commands.clear()
    run_provision("t1", guest=lab["guest"])
    assert stage_commands(lab["guest"]) == ["echo b", "test b", "echo c"]


def test_a_reboot_stage_verifies_only_once_the_guest_answers_from_a_new_boot(lab):
    write_profile(lab["profile"], lab["uri"], reboot_b=True)
    guest = lab["guest"]
    run_provision("t1", guest=guest)
    reboot = next(i for i, c in enumerate(guest.commands) if "systemctl reboot" in c)
    assert guest.commands[reboot - 1].startswith("cat /proc/sys/kernel/random/boot_id")
    assert guest.commands.index("test b") > reboot
    old_boot = [w for w in guest.waits if w is not None]
    assert len(old_boot) == 1 and old_boot[0] != guest.boot_id


def test_a_rebuild_retries_a_flaky_stage_and_reports_each_attempt_without_side_files(
        lab, tmp_path):
    lab["guest"].failures = {"echo b": 1}
    out = tmp_path / "report"
    report = rebuild(str(lab["profile"]), "t1", from_stage="a", retries=1, report_dir=out,
                     progress=labs.QUIET, guest=lab["guest"])
    assert (report.status, report.exit_code) == ("passed", 0)
    by_name = {s.name: s for s in report.stages}
    assert (by_name["b"].status, by_name["b"].attempts) == ("flaky", 2)
    assert by_name["b"].failure["command"] == "echo b"  # what the failed attempt said
    assert [Path(p).name for p in by_name["b"].logs] == ["02-b-1.log", "02-b-2.log"]
    assert "exit 7" in Path(by_name["b"].logs[0]).read_text()
    assert (by_name["a"].status, by_name["c"].status) == ("passed", "passed")
    assert not list((lab["home"].labs / "t1").glob("failures*"))
    junit = ET.fromstring((out / "junit.xml").read_bytes())
    assert (junit.get("tests"), junit.get("failures")) == ("3", "0")


def test_a_rebuild_whose_retries_run_out_reports_the_last_failure_and_runs_nothing_after(
        lab, tmp_path):
    lab["guest"].failures = {"echo b": -1}
    report = rebuild(str(lab["profile"]), "t1", from_stage="a", retries=1,
                     report_dir=tmp_path / "r", progress=labs.QUIET, guest=lab["guest"])
    assert (report.status, report.exit_code) == ("failed", 1)
    assert "stage 'b' failed" in report.error
    assert [(s.name, s.status, s.attempts) for s in report.stages] == [
        ("a", "passed", 1), ("b", "failed", 2), ("c", "not-run", 0)]
    assert "echo c" not in lab["guest"].commands
    assert statuses(lab["home"]) == {"a": "done", "b": "failed", "c": "pending"}


def test_recover_counts_a_stage_done_when_the_snapshot_after_it_exists(lab):
    run_provision("t1", guest=lab["guest"])
    labs.rollback("c", "t1", guest=lab["guest"])  # snapshots a, b and c remain
    (lab["home"].labs / "t1" / "state.json").write_text("garbage")
    state = recover("t1", str(lab["profile"]))
    assert [(s.name, s.status) for s in state.stages] == [
        ("a", "done"), ("b", "done"), ("c", "pending")]
    assert (lab["home"].labs / "t1" / "state.json.broken").read_text() == "garbage"


def test_recover_refuses_a_vm_tagged_as_another_labs(home: Home, tmp_path, monkeypatch):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a"], owner="someone-else"))
    profile = write_profile(tmp_path / "t1.yaml", uri)
    home.lab("t1", "garbage")
    driver = SharedDriver(uri)
    monkeypatch.setattr(labs, "open_driver", lambda hypervisor: driver)
    monkeypatch.setattr("vmlab.recover.open_driver", lambda hypervisor: driver)
    with pytest.raises(NotOwned, match="not tagged as lab 't1'"):
        recover("t1", str(profile))
    assert (home.labs / "t1" / "state.json").read_text() == "garbage"

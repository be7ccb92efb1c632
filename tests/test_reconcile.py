"""Provisioning that knows what changed, on hand-made labs (libvirt's test driver; the
guest a scripted one, reached through the GuestAccess seam): fingerprints recorded as stages run, status
marking changed and stale stages (from the drift key alone while no file changed), `vmlab
diff`, provision rolling back to the first changed stage (asked, --yes, --no-rollback),
nothing changed is nothing done, and --on-error."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.handmade_labs import RUNNING, Home, node_file, state_v2, vm_xml
from tests.handmade_labs import write_profile as handmade_profile
from tests.scripted_guest import ScriptedGuest
from tests.test_cli_imports import loaded
from vmlab import driftkey, guestaccess

REPO = Path(__file__).resolve().parent.parent


def write_profile(path: Path, uri: str, *, a: str = "echo a", b: str = "echo b") -> Path:
    return handmade_profile(path, uri, a=a, b=b, snapshots="live")


@pytest.fixture
def lab(home: Home, tmp_path, monkeypatch, vmlab_cli):
    """Lab t1 (stages a, b; snapshots a, b and complete on a running VM), provisioned once
    through the real code so that its fingerprints and plans are recorded."""
    uri = node_file(tmp_path / "node.xml",
                    vm_xml("t1", ["a", "b", "complete"], state=RUNNING))
    profile = write_profile(tmp_path / "t1.yaml", uri)
    aged(profile, 3600)  # edited long before it was provisioned: the drift key is recorded
    state = state_v2("t1", uri, {"a": "pending", "b": "pending"}, profile_path=str(profile))
    state["snapshots"] = {"mode": "live"}
    home.lab("t1", state)
    guest = ScriptedGuest(failures={"exit 7": -1})
    monkeypatch.setattr("vmlab.cli.stagerun.interactive", lambda: False)
    with guestaccess.using(guest):
        first = vmlab_cli("provision", "--lab", "t1")
        assert first.code == 0, first
        assert guest.commands == ["echo a", "echo b"]
        guest.commands.clear()
        yield {"profile": profile, "uri": uri, "guest": guest, "home": home}


def aged(path: Path, seconds: int) -> None:
    """Give ``path`` an mtime ``seconds`` ago (its content stays)."""
    then = time.time_ns() - seconds * 10**9
    os.utime(path, ns=(then, then))


def saved(home: Home) -> dict:
    return json.loads((home.labs / "t1" / "state.json").read_text())


def drift(vmlab_cli) -> dict:
    status = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    return {row["name"]: row["drift"] for row in status["stages"]}


def test_a_stage_records_its_fingerprint_and_plan_as_it_runs(lab):
    state = saved(lab["home"])
    assert state["schema_version"] == 3
    assert all(len(s["fingerprint"]) == 64 and s["plan_hash"] for s in state["stages"])
    assert (lab["home"].labs / "t1" / "plans" / "b.txt").read_text() == \
        "stage b\n[install] $ echo b\n"


def test_status_marks_the_changed_stage_and_the_stale_ones_after_it(lab, vmlab_cli):
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "unchanged"}
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "changed"}
    write_profile(lab["profile"], lab["uri"], a="echo edited")
    assert drift(vmlab_cli) == {"a": "changed", "b": "stale"}
    status = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    assert status["changed"] == "a"
    assert status["next"].startswith("vmlab provision --lab t1 (rolls back to a")
    text = vmlab_cli("status", "--lab", "t1").out
    assert re.search(r"^  done +a( \d+s)?( \[snapshot\])?  changed since it ran$", text, re.M)
    assert re.search(r"^  done +b( \d+s)?( \[snapshot\])?  stale: an earlier stage changed$",
                     text, re.M), text


def test_diff_shows_the_edit_as_a_unified_diff(lab, vmlab_cli):
    assert vmlab_cli("diff", "--lab", "t1").out == "= a: unchanged\n= b: unchanged\n"
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    out = vmlab_cli("diff", "b", "--lab", "t1").out
    assert "--- b (as it ran, " in out and "+++ b (now)" in out
    assert "-[install] $ echo b\n+[install] $ echo edited\n" in out
    rows = json.loads(vmlab_cli("diff", "--lab", "t1", "--json").out)
    assert [(r["stage"], r["drift"], bool(r["diff"])) for r in rows] == \
        [("a", "unchanged", False), ("b", "changed", True)]
    missing = vmlab_cli("diff", "nosuch", "--lab", "t1")
    assert missing.code == 2 and "has no stage 'nosuch'" in missing.err


def test_provision_with_yes_rolls_back_to_the_changed_stage_and_runs_only_from_it(lab,
                                                                                   vmlab_cli):
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    result = vmlab_cli("provision", "--lab", "t1", "--yes")
    assert result.code == 0, result
    assert lab["guest"].commands == ["echo edited"]
    assert "stage b changed since it ran; rolling back" in result.err
    assert "deleted snapshot 'complete'" in result.err and "snapshot 'complete' taken" in result.err
    state = saved(lab["home"])
    assert [s["attempts"] for s in state["stages"]] == [1, 2]
    assert (lab["home"].labs / "t1" / "plans" / "b.txt").read_text().endswith("echo edited\n")


def test_an_early_edit_runs_that_stage_and_every_later_one_again(lab, vmlab_cli):
    write_profile(lab["profile"], lab["uri"], a="echo edited")
    assert vmlab_cli("provision", "--lab", "t1", "--yes").code == 0
    assert lab["guest"].commands == ["echo edited", "echo b"]


def test_without_a_terminal_or_yes_provision_refuses_and_changes_nothing(lab, vmlab_cli):
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    before = saved(lab["home"])
    result = vmlab_cli("resume", "--lab", "t1")
    assert result.code == 2
    assert "not rolling back without a terminal to ask on: stage b changed" in result.err
    assert "--yes" in result.err and "--no-rollback" in result.err
    assert lab["guest"].commands == [] and saved(lab["home"]) == before


def test_on_a_terminal_provision_says_what_it_will_do_and_asks(lab, vmlab_cli, monkeypatch):
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    monkeypatch.setattr("vmlab.cli.stagerun.interactive", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    declined = vmlab_cli("provision", "--lab", "t1")
    assert "Stage b changed since it ran: roll back to its snapshot and run b again." \
        in declined.err
    assert declined.code == 2 and "rolling back was declined" in declined.err
    assert lab["guest"].commands == []
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    assert vmlab_cli("provision", "--lab", "t1").code == 0
    assert lab["guest"].commands == ["echo edited"]


def test_no_rollback_runs_only_pending_stages(lab, vmlab_cli):
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    result = vmlab_cli("provision", "--lab", "t1", "--no-rollback")
    assert result.code == 0 and "not rolling back (--no-rollback)" in result.err
    assert lab["guest"].commands == []
    assert drift(vmlab_cli)["b"] == "changed"


def test_nothing_changed_is_a_no_op(lab, vmlab_cli):
    before = saved(lab["home"])
    result = vmlab_cli("provision", "--lab", "t1")
    assert result.code == 0 and result.out == "nothing changed; every stage is done\n"
    assert lab["guest"].commands == [] and saved(lab["home"]) == before


def test_nothing_changed_takes_well_under_a_second_as_a_command(lab):
    """The whole command, in a new process as an operator runs it: start-up included."""
    env = {"XDG_STATE_HOME": str(lab["home"].root / "state"),
           "XDG_CONFIG_HOME": str(lab["home"].root / "config"), "PYTHONPATH": str(REPO),
           "PATH": "/usr/bin:/bin"}
    timings = []
    for _ in range(2):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "vmlab", "provision", "--lab", "t1"],
                              env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        timings.append(time.monotonic() - started)
        assert done.returncode == 0 and "nothing changed" in done.stdout, done.stderr
    assert min(timings) < 1.0, timings


def fail_b(lab) -> None:
    write_profile(lab["profile"], lab["uri"], b="echo broken; exit 7")


def test_on_error_rollback_reverts_the_failed_stage(lab, vmlab_cli):
    fail_b(lab)
    result = vmlab_cli("provision", "--lab", "t1", "--yes", "--on-error", "rollback")
    assert result.code == 1 and "stage 'b' failed" in result.err
    assert "rolled back to just before b" in result.err
    assert "vmlab resume --lab t1" in result.err
    assert [s["status"] for s in saved(lab["home"])["stages"]] == ["done", "pending"]


def test_on_error_keep_leaves_the_stage_failed(lab, vmlab_cli):
    fail_b(lab)
    result = vmlab_cli("provision", "--lab", "t1", "--yes", "--on-error", "keep")
    assert result.code == 1 and "the guest is as the stage left it" in result.err
    assert [s["status"] for s in saved(lab["home"])["stages"]] == ["done", "failed"]


def test_on_error_shell_shows_the_failed_command_and_opens_a_shell(lab, vmlab_cli,
                                                                   monkeypatch):
    opened = []
    monkeypatch.setattr("vmlab.cli.stagerun.open_shell", lambda name: opened.append(name))
    fail_b(lab)
    result = vmlab_cli("provision", "--lab", "t1", "--yes", "--on-error", "shell")
    assert result.code == 1 and opened == ["t1"]
    assert "failed command in stage b (exit 7):\n  $ echo broken; exit 7" in result.err
    assert "stderr (tail):\n  it broke" in result.err
    assert [s["status"] for s in saved(lab["home"])["stages"]] == ["done", "failed"]


def test_on_error_ask_offers_the_choices_on_a_terminal(lab, vmlab_cli, monkeypatch):
    fail_b(lab)
    monkeypatch.setattr("vmlab.cli.stagerun.interactive", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\nrollback\n"))
    result = vmlab_cli("provision", "--lab", "t1")
    assert "shell: open a shell in the guest where it failed" in result.err
    assert result.code == 1
    assert [s["status"] for s in saved(lab["home"])["stages"]] == ["done", "pending"]


def test_without_a_terminal_a_failure_leaves_the_guest_as_before(lab, vmlab_cli):
    fail_b(lab)
    result = vmlab_cli("provision", "--lab", "t1", "--yes")
    assert result.code == 1 and "the guest is as the stage left it" not in result.err
    assert [s["status"] for s in saved(lab["home"])["stages"]] == ["done", "failed"]


def test_rebuild_changed_runs_from_the_changed_stage_and_reports_the_rest_reused(lab,
                                                                                  vmlab_cli,
                                                                                  tmp_path):
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    out = tmp_path / "report"
    result = vmlab_cli("rebuild", "--profile", str(lab["profile"]), "--changed",
                       "--report-dir", str(out), "--json")
    assert result.code == 0, result
    assert lab["guest"].commands == ["echo edited"]
    run = json.loads((out / "run.json").read_text())
    assert run["mode"] == "changed" and run["status"] == "passed"
    assert [(s["name"], s["status"]) for s in run["stages"]] == [("a", "reused"),
                                                                 ("b", "passed")]
    junit = (out / "junit.xml").read_text()
    assert 'message="reused: unchanged since it ran' in junit
    # nothing changed since: every stage is reused, nothing runs
    lab["guest"].commands.clear()
    again = vmlab_cli("rebuild", "--profile", str(lab["profile"]), "--changed",
                      "--report-dir", str(tmp_path / "again"))
    assert again.code == 0 and lab["guest"].commands == []
    run = json.loads((tmp_path / "again" / "run.json").read_text())
    assert [s["status"] for s in run["stages"]] == ["reused", "reused"]


def test_rebuild_on_error_rollback_reverts_the_stage_that_failed(lab, vmlab_cli, tmp_path):
    fail_b(lab)
    result = vmlab_cli("rebuild", "--profile", str(lab["profile"]), "--changed",
                       "--report-dir", str(tmp_path / "r"), "--on-error", "rollback")
    assert result.code == 1 and "rolled back to just before b" in result.err
    assert [s["status"] for s in saved(lab["home"])["stages"]] == ["done", "pending"]


def test_a_stage_added_ahead_of_done_ones_runs_in_its_place_and_later_snapshots_follow(
        lab, vmlab_cli):
    text = lab["profile"].read_text().replace('  - {name: b, run: ["echo b"]}',
                                              '  - {name: x, run: ["echo x"]}\n'
                                              '  - {name: b, run: ["echo b"]}')
    lab["profile"].write_text(text)
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "stale"}  # x: not in the lab yet
    result = vmlab_cli("provision", "--lab", "t1", "--yes")
    assert result.code == 0, result
    assert lab["guest"].commands == ["echo x", "echo b"]  # x in its place, then b again
    assert "deleted snapshot 'b': it was taken before x ran; taking it again" in result.err
    assert "deleted snapshot 'complete': it was taken" not in result.err  # rollback removed it


# -- the drift key: status quick while nothing changed --------------------------------------

#: What status loads only when it works the fingerprints out.
SLOW_PATH = ("vmlab.fingerprint", "vmlab.profile", "pydantic", "yaml", "jinja2")


def status_took_the_slow_path(lab) -> bool:
    """Run `vmlab status` in a new interpreter: did it load the profile and the plans?"""
    code, modules = loaded(lab["home"].root, "status", "--lab", "t1")
    assert code in (0, None)
    slow = {name for name in SLOW_PATH if name in modules}
    assert slow in (set(), set(SLOW_PATH)), slow  # all of it or none of it
    return bool(slow)


def test_provision_records_a_drift_key_and_status_then_reads_nothing_more(lab, vmlab_cli):
    state = saved(lab["home"])
    assert state["drift_key"] and str(lab["profile"]) in state["drift_files"]
    assert not status_took_the_slow_path(lab)
    quick = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    state["drift_key"] = None  # the same lab, its key unknown: the fingerprints decide
    (lab["home"].labs / "t1" / "state.json").write_text(json.dumps(state))
    assert status_took_the_slow_path(lab)
    assert json.loads(vmlab_cli("status", "--lab", "t1", "--json").out) == quick
    assert [row["drift"] for row in quick["stages"]] == ["unchanged", "unchanged"]


def test_a_touched_profile_makes_status_read_it_and_mark_only_a_real_change(lab, vmlab_cli):
    aged(lab["profile"], 60)  # the mtime changed, the content did not
    assert status_took_the_slow_path(lab)
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "unchanged"}
    assert "changed since it ran" not in vmlab_cli("status", "--lab", "t1").out
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    aged(lab["profile"], 30)
    assert status_took_the_slow_path(lab)
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "changed"}
    assert re.search(r"^  done +b.*  changed since it ran$",
                     vmlab_cli("status", "--lab", "t1").out, re.M)


def test_a_no_op_provision_after_a_touch_makes_status_quick_again(lab, vmlab_cli):
    before = saved(lab["home"])["drift_key"]
    aged(lab["profile"], 60)
    result = vmlab_cli("provision", "--lab", "t1")
    assert result.out == "nothing changed; every stage is done\n"
    assert saved(lab["home"])["drift_key"] not in (None, before)
    assert not status_took_the_slow_path(lab)


def test_a_lab_left_with_a_changed_stage_records_no_key_until_it_is_rerun(lab, vmlab_cli):
    assert vmlab_cli("rollback", "b", "--lab", "t1").code == 0
    write_profile(lab["profile"], lab["uri"], a="echo edited")
    aged(lab["profile"], 60)
    assert vmlab_cli("provision", "--lab", "t1", "--no-rollback").code == 0
    assert lab["guest"].commands == ["echo b"]
    assert saved(lab["home"])["drift_key"] is None  # a still changed: never the shortcut
    assert status_took_the_slow_path(lab)
    assert drift(vmlab_cli) == {"a": "changed", "b": "unchanged"}  # b ran on the new plan
    assert vmlab_cli("provision", "--lab", "t1", "--yes").code == 0
    assert saved(lab["home"])["drift_key"] is not None
    assert not status_took_the_slow_path(lab)
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "unchanged"}


def test_a_no_rollback_provision_that_runs_nothing_leaves_no_key_of_the_files_now(lab,
                                                                                  vmlab_cli):
    write_profile(lab["profile"], lab["uri"], b="echo edited")
    aged(lab["profile"], 60)
    assert vmlab_cli("provision", "--lab", "t1", "--no-rollback").code == 0
    state = saved(lab["home"])  # b still changed: the key of the files now is not recorded
    assert state["drift_key"] != driftkey.key(state["drift_files"])
    assert status_took_the_slow_path(lab) and drift(vmlab_cli)["b"] == "changed"


def test_a_profile_edited_while_provision_read_it_records_no_key(lab, vmlab_cli):
    write_profile(lab["profile"], lab["uri"], b="echo edited")  # mtime: just now
    assert vmlab_cli("provision", "--lab", "t1", "--yes").code == 0
    assert saved(lab["home"])["drift_key"] is None
    assert status_took_the_slow_path(lab)
    assert drift(vmlab_cli) == {"a": "unchanged", "b": "unchanged"}

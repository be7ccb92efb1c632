"""A rebuild's report: junit.xml counts that match its testcases, no "None" properties,
every run listed by `vmlab runs` (also one written to --report-dir), and a replay of a lab
that does not exist refused as usage without recording a run."""
from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET

import pytest

from tests.handmade_labs import state_v2, write_profile
from vmlab.rebuild import RunReport, StageResult, junit_xml


def assert_counts_match_testcases(xml: bytes) -> ET.Element:
    suite = ET.fromstring(xml)
    cases = suite.findall("testcase")
    assert int(suite.get("tests")) == len(cases)
    for attribute, child in (("failures", "failure"), ("errors", "error"),
                             ("skipped", "skipped")):
        assert int(suite.get(attribute)) == sum(c.find(child) is not None for c in cases), \
            attribute
    for prop in suite.iter("property"):
        assert prop.get("value") not in ("None", ""), prop.attrib
    return suite


def report(status: str, stages: list[tuple[str, str, dict | None]], **fields) -> RunReport:
    return RunReport(lab="t1", profile="t1", mode="from scratch",
                     started="2026-01-01T00:00:00+00:00", status=status,
                     stages=[StageResult(name, result, attempts=1, failure=failure)
                             for name, result, failure in stages], **fields)


FAILURE = {"message": "command exited 1", "command": "false", "exit_code": 1,
           "stdout_tail": "", "stderr_tail": "boom", "log": "/l"}

REPORTS = {
    "passed": report("passed", [("a", "passed", None), ("b", "passed", None)], driver="libvirt",
                     acceleration="tcg"),
    "failed": report("failed", [("a", "passed", None), ("b", "failed", FAILURE),
                                ("c", "not-run", None)], driver="libvirt", acceleration="tcg"),
    "failed without details": report("failed", [("a", "failed", None), ("b", "not-run", None)],
                                     driver="libvirt"),
    "error before a VM was made": report("error", [("a", "not-run", None), ("b", "not-run", None),
                                                   ("c", "not-run", None)],
                                         error="cannot connect to libvirt", driver="libvirt"),
    "flaky and replayed": report("passed", [("a", "skipped", None), ("b", "flaky", FAILURE)],
                                 driver="vsphere", acceleration="kvm"),
}


@pytest.mark.parametrize("case", sorted(REPORTS))
def test_junit_counts_are_those_of_its_testcases(case):
    suite = assert_counts_match_testcases(junit_xml(REPORTS[case], total=1.0))
    if case == "error before a VM was made":
        assert suite.get("tests") == "4" and suite.get("errors") == "1"
        assert {p.get("name") for p in suite.iter("property")} == {
            "profile", "mode", "driver", "vmlab_version"}  # acceleration unknown: left out
    if case == "failed without details":
        assert suite.find("testcase[@name='a']/failure") is not None


def test_a_replay_of_a_lab_that_does_not_exist_is_refused_and_records_nothing(
        home, vmlab_cli, tmp_path):
    profile = write_profile(tmp_path / "t1.yaml", "test:///unused.xml")
    result = vmlab_cli("rebuild", "--profile", str(profile), "--from", "a")
    assert result.code == 2, result
    assert "lab 't1' does not exist, so it cannot be replayed from a" in result.err
    nosuch = vmlab_cli("rebuild", "--profile", str(profile), "--from", "nosuch")
    assert nosuch.code == 2 and "the profile has no stage 'nosuch'" in nosuch.err
    assert not (home.state_dir / "runs").exists()
    assert vmlab_cli("runs").out == "no runs\n"


def test_a_run_with_a_report_dir_is_listed_and_never_pruned_from_there(home, vmlab_cli, tmp_path,
                                                                       closed_port):
    profile = write_profile(tmp_path / "t1.yaml", f"qemu+tcp://127.0.0.1:{closed_port}/system")
    out = tmp_path / "out"
    first = vmlab_cli("rebuild", "--profile", str(profile), "--report-dir", str(out))
    assert first.code == 3, first
    suite = assert_counts_match_testcases((out / "junit.xml").read_bytes())
    assert suite.find("testcase[@name='infrastructure']/error") is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["driver"] == "libvirt" and "acceleration" not in props
    runs = json.loads(vmlab_cli("runs", "--json").out)
    assert [(r["lab"], r["status"], r["path"]) for r in runs] == [("t1", "error", str(out))]
    # Pruning keeps the newest run; the older one's record goes, its report dir stays.
    time.sleep(1.1)  # run folders are named by the second
    second = vmlab_cli("rebuild", "--profile", str(profile), "--keep-runs", "1")
    assert second.code == 3
    runs = json.loads(vmlab_cli("runs", "--lab", "t1", "--json").out)
    assert len(runs) == 1 and runs[0]["path"] != str(out)
    assert (out / "junit.xml").is_file()


def test_a_failed_stage_run_reports_matching_counts(home, tmp_path):
    """A run's report from a lab whose last stage failed: _collect and junit_xml together."""
    from vmlab.attempts import StageAttempt
    from vmlab.rebuild import _collect

    home.lab("t1", state_v2("t1", "test:///x.xml", {"a": "done", "b": "failed", "c": "pending"}))
    ran = [StageAttempt("a", 1, True, 1.0, None),
           StageAttempt("b", 1, False, 2.0, None, failure={"message": "it broke"})]
    run = RunReport(lab="t1", profile="t1", mode="from scratch",
                    started="2026-01-01T00:00:00+00:00", status="failed", driver="libvirt")
    out = tmp_path / "run"
    out.mkdir()
    _collect(run, "t1", ["a", "b", "c"], ran, None, out, total=3.0)
    suite = assert_counts_match_testcases((out / "junit.xml").read_bytes())
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    assert {p.get("name"): p.get("value") for p in suite.iter("property")}["acceleration"] == "tcg"

"""Nightly rebuilds: recreate a lab (or replay it from a stage's snapshot), retry failed
stages, and leave a report a CI server reads (junit.xml, run.json, the logs).

Runs live beside the labs, in ``<state>/runs/<lab>/<timestamp>/``, so that destroying a lab
for a from-scratch rebuild keeps the history of its nights. A run whose report goes to a
``--report-dir`` elsewhere still leaves its run.json there (pointing at that directory), so
`vmlab runs` lists every run; pruning old runs never deletes outside that folder.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import shutil
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import filelock

from vmlab import __version__, lab as labs, paths, reconcile
from vmlab import create as creating
from vmlab.attempts import StageAttempt
from vmlab.errors import (EXIT_FAILED, EXIT_OK, LabLocked, NotFound, StageFailed, UsageError,
                          VmlabError)
from vmlab.guestaccess import GuestAccess
from vmlab.names import check_lab_name
from vmlab.progress import Progress
from vmlab.redaction import redact
from vmlab.state import LabFiles, write_atomic


@dataclass
class StageResult:
    name: str
    status: str  # passed | flaky | failed | not-run | skipped | reused
    attempts: int = 0
    duration: float = 0.0
    snapshot: str | None = None
    logs: list[str] = field(default_factory=list)
    failure: dict | None = None


@dataclass
class RunReport:
    lab: str
    profile: str
    mode: str
    started: str
    finished: str = ""
    status: str = "running"
    exit_code: int = EXIT_OK
    error: str | None = None
    #: The error's problems, one per line, and what to do about them (a nightly reader's
    #: only view of why the run stopped)
    problems: list[str] = field(default_factory=list)
    hint: str | None = None
    driver: str | None = None
    acceleration: str | None = None
    vmlab_version: str = __version__
    python: str = platform.python_version()
    stages: list[StageResult] = field(default_factory=list)
    run_dir: str = ""


def runs_dir(lab: str) -> Path:
    return paths.runs_dir(lab)


def rebuild(profile: str, lab: str | None = None, *, from_stage: str | None = None,
            retries: int = 0, report_dir: Path | None = None, keep_runs: int | None = None,
            changed: bool = False, progress: Progress,
            guest: GuestAccess | None = None) -> RunReport:
    """Rebuild the lab from scratch, replay it from ``from_stage``, or (``changed``) run it
    again from the first stage whose plan changed since it ran, reusing the stages before
    it (from scratch when the lab does not exist)."""
    from vmlab.profile import load_profile

    loaded = load_profile(profile)
    name = check_lab_name(lab if lab is not None else loaded.profile.name)
    if from_stage is not None:  # refused as usage: no run is recorded for a wrong command
        _check_replay(name, from_stage, loaded.profile.stage_names)
    base = runs_dir(name)
    base.mkdir(parents=True, exist_ok=True)
    guard = filelock.FileLock(str(base / "rebuild.lock"), timeout=0)
    try:
        guard.acquire()
    except filelock.Timeout:
        holder = (base / "rebuild.info").read_text().strip() if (base / "rebuild.info").is_file() \
            else "another vmlab rebuild"
        raise LabLocked(f"lab {name!r} is being rebuilt: {holder}",
                        hint="wait for it to finish; a lock of a process that died is freed") \
            from None
    try:
        (base / "rebuild.info").write_text(
            f"`vmlab rebuild` (pid {os.getpid()} on {socket.gethostname()}) since "
            f"{datetime.now(timezone.utc):%Y-%m-%dT%H:%M:%SZ}\n")
        started = datetime.now(timezone.utc)
        record_dir = base / started.strftime("%Y%m%dT%H%M%SZ")
        run_dir = report_dir or record_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        record_dir.mkdir(parents=True, exist_ok=True)
        changed = changed and LabFiles(name).exists()
        report = RunReport(lab=name, profile=loaded.profile.name,
                           mode=f"from {from_stage}" if from_stage else
                           "changed" if changed else "from scratch",
                           started=started.isoformat(timespec="seconds"),
                           driver=loaded.profile.hypervisor.kind,
                           run_dir=str(run_dir.resolve()))
        clock = time.monotonic()
        attempts: list[StageAttempt] = []
        try:
            failure = _run(name, profile, from_stage, retries, progress, attempts,
                           changed=changed, guest=guest)
            if failure is None:
                report.status, report.exit_code = "passed", EXIT_OK
            else:
                report.status, report.exit_code = "failed", EXIT_FAILED
                report.error = failure.message
        except VmlabError as exc:
            report.status, report.exit_code, report.error = "error", exc.exit_code, exc.message
            report.problems = list(getattr(exc, "problems", []))
            report.hint = exc.hint
        report.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        _collect(report, name, loaded.profile.stage_names, attempts, from_stage, run_dir,
                 total=time.monotonic() - clock)
        if record_dir != run_dir:  # so that `vmlab runs` lists it too
            write_atomic(record_dir / "run.json", (run_dir / "run.json").read_bytes(), 0o644)
        if keep_runs is not None:
            prune(name, keep_runs)
        return report
    finally:
        (base / "rebuild.info").unlink(missing_ok=True)
        guard.release()


def _check_replay(name: str, from_stage: str, stages: list[str]) -> None:
    if from_stage not in stages:
        raise UsageError(f"the profile has no stage {from_stage!r}",
                         hint="stages: " + ", ".join(stages))
    if not LabFiles(name).exists():
        raise UsageError(f"lab {name!r} does not exist, so it cannot be replayed from "
                         f"{from_stage}", hint="run a rebuild from scratch first (without "
                                               "--from)")


def _run(name: str, profile: str, from_stage: str | None, retries: int, progress: Progress,
         attempts: list[StageAttempt], *, changed: bool = False,
         guest: GuestAccess | None = None) -> StageFailed | None:
    """Build or replay the lab; retry a failed stage after rolling it back. Every stage run
    is added to ``attempts`` as it ends; returns the failure that ended the run, if any."""
    files = LabFiles(name)
    if from_stage is not None and not changed:
        labs.rollback(from_stage, name, progress=progress, guest=guest)
    elif not changed:  # provision rolls back to the first changed stage by itself
        if files.exists():
            progress.step(f"destroying the previous lab {name}")
            try:
                labs.destroy(name, progress=progress)
            except NotFound:
                labs.forget(name)
        creating.create(profile, name, provision=False, progress=progress, guest=guest)
    retried: dict[str, int] = {}
    while True:
        result = reconcile.run_provision(name, progress=progress, raise_failure=False,
                                         guest=guest)
        attempts.extend(result.attempts)
        failure = result.failed
        if failure is None:
            return None
        retried[failure.stage] = retried.get(failure.stage, 0) + 1
        if retried[failure.stage] > retries:
            return failure
        progress.warn(f"stage {failure.stage} failed; rolling it back for retry "
                      f"{retried[failure.stage]} of {retries}")
        labs.rollback(failure.stage, name, progress=progress, guest=guest)


def _stage_result(stage_name: str, mine: list[StageAttempt], record, skipped: bool,
                  mode: str) -> StageResult:
    """A stage's line in the report: from this run's attempts at it, or (none) from what
    the state says of it."""
    result = StageResult(name=stage_name, status="not-run", attempts=len(mine),
                         snapshot=stage_name)
    if mine:
        last = mine[-1]
        result.duration = last.duration
        result.status = ("failed" if not last.passed else
                         "flaky" if len(mine) > 1 else "passed")
        failures = [a.failure for a in mine if a.failure is not None]
        result.failure = failures[-1] if failures else None
    elif record is not None and record.status == "done":
        result.duration = record.duration or 0.0
        result.status = "reused" if mode == "changed" and not skipped else "skipped"
    elif skipped:
        result.status = "skipped"
    return result


def _collect(report: RunReport, name: str, stages: list[str], attempts: list[StageAttempt],
             from_stage: str | None, run_dir: Path, total: float) -> None:
    files = LabFiles(name)
    secrets = files.load_secrets().values() if files.root.is_dir() else []
    try:
        state = files.load() if files.exists() else None
    except VmlabError:  # a state file that cannot be used: report what the run knows
        state = None
    if state is not None:
        report.driver, report.acceleration = state.driver, state.acceleration
    logs_dir = run_dir / "logs"
    logs_dir.mkdir(exist_ok=True)
    first = stages.index(from_stage) if from_stage else 0
    for index, stage_name in enumerate(stages):
        mine = [a for a in attempts if a.stage == stage_name]
        record = state.stage(stage_name) if state else None
        result = _stage_result(stage_name, mine, record, index < first, report.mode)
        for attempt in mine:
            log = Path(attempt.log) if attempt.log else None
            if log is not None and log.is_file():
                target = logs_dir / log.name
                target.write_text(redact(log.read_text(errors="replace"), secrets))
                result.logs.append(str(target))
        report.stages.append(result)
    vmlab_log = files.logs / "vmlab.log"
    if vmlab_log.is_file():
        (logs_dir / "vmlab.log").write_text(redact(vmlab_log.read_text(errors="replace"), secrets))
    if state is not None:
        _copy_console_log(name, logs_dir, secrets)
    write_atomic(run_dir / "run.json", json.dumps(asdict(report), indent=2).encode(), 0o644)
    write_atomic(run_dir / "junit.xml", junit_xml(report, total), 0o644)


def _copy_console_log(name: str, logs_dir: Path, secrets) -> None:
    """The guest's serial console, when the hypervisor is this machine and it is readable."""
    try:
        with labs.open_lab(name, "rebuild report", lock=False) as lab_obj:
            path = lab_obj.driver.console_log_path(lab_obj.ref())
    except VmlabError:
        return
    if path and Path(path).is_file():
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return
        (logs_dir / "console.log").write_text(redact(text[-2_000_000:], secrets))


def junit_xml(report: RunReport, total: float) -> bytes:
    """One testsuite per lab run, one testcase per stage; flaky retries visible. The
    suite's counts are those of its testcases (an infrastructure error is one more)."""
    suite = ET.Element("testsuite", {
        "name": f"vmlab.{report.lab}", "tests": "", "failures": "", "errors": "",
        "skipped": "", "time": f"{total:.1f}", "timestamp": report.started})
    properties = ET.SubElement(suite, "properties")
    for key in ("profile", "mode", "driver", "acceleration", "vmlab_version"):
        value = getattr(report, key)
        if value is not None:  # unknown (e.g. no VM was made): left out, not "None"
            ET.SubElement(properties, "property", {"name": key, "value": str(value)})
    for stage in report.stages:
        case = ET.SubElement(suite, "testcase", {"classname": f"vmlab.{report.lab}",
                                                 "name": stage.name,
                                                 "time": f"{stage.duration:.1f}"})
        if stage.status == "failed":
            failure = stage.failure or {"message": "the stage failed; see its log"}
            element = ET.SubElement(case, "failure", {
                "message": failure["message"].splitlines()[0][:500],
                "type": "StageFailed"})
            element.text = "\n".join(filter(None, [
                f"command: {failure.get('command')}", f"exit code: {failure.get('exit_code')}",
                "stdout (tail):\n" + (failure.get("stdout_tail") or ""),
                "stderr (tail):\n" + (failure.get("stderr_tail") or ""),
                f"log: {failure.get('log')}"]))
        elif stage.status in ("skipped", "not-run", "reused"):
            ET.SubElement(case, "skipped", {"message": {
                "skipped": "replayed from its snapshot",
                "reused": "reused: unchanged since it ran (its plan's fingerprint is the same)"
            }.get(stage.status, "not reached")})
        elif stage.status == "flaky":
            earlier = ((stage.failure or {}).get("message") or "an earlier attempt failed")
            flaky = ET.SubElement(case, "flakyFailure", {"message": earlier.splitlines()[0][:500],
                                                         "type": "StageFailed"})
            flaky.text = (stage.failure or {}).get("stderr_tail") or ""
            ET.SubElement(case, "system-out").text = (
                f"FLAKY: passed on attempt {stage.attempts} of the stage")
    if report.status == "error":
        case = ET.SubElement(suite, "testcase", {"classname": f"vmlab.{report.lab}",
                                                 "name": "infrastructure"})
        error = ET.SubElement(case, "error", {"message": (report.error or "")[:500]})
        error.text = "\n".join(report.problems + ([f"hint: {report.hint}"] if report.hint
                                                    else []))
    cases = suite.findall("testcase")
    for attribute, child in (("failures", "failure"), ("errors", "error"),
                             ("skipped", "skipped")):
        suite.set(attribute, str(sum(case.find(child) is not None for case in cases)))
    suite.set("tests", str(len(cases)))
    ET.indent(suite)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


def list_runs(lab: str | None = None) -> list[dict]:
    root = paths.state_dir() / "runs"
    labs_with_runs = [check_lab_name(lab)] if lab else sorted(
        p.name for p in root.glob("*") if p.is_dir())
    rows = []
    for name in labs_with_runs:
        for run_json in sorted((root / name).glob("*/run.json")):
            data = json.loads(run_json.read_text())
            started = datetime.fromisoformat(data["started"])
            finished = datetime.fromisoformat(data["finished"]) if data["finished"] else started
            rows.append({"lab": name, "run": run_json.parent.name, "status": data["status"],
                         "mode": data["mode"], "started": data["started"],
                         "duration": (finished - started).total_seconds(),
                         "flaky": [s["name"] for s in data["stages"] if s["status"] == "flaky"],
                         "failed": [s["name"] for s in data["stages"] if s["status"] == "failed"],
                         "path": data.get("run_dir") or str(run_json.parent)})
    return rows


def prune(lab: str, keep: int) -> list[Path]:
    runs = sorted(p for p in runs_dir(lab).glob("*") if (p / "run.json").is_file())
    removed = runs[:-keep] if keep > 0 else runs
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed

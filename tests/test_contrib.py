"""The shipped scheduler examples: parseable, and calling vmlab the way the docs say."""
from __future__ import annotations

import configparser
import os
import shlex
import subprocess
import tarfile
from pathlib import Path

import yaml

from vmlab.cli import cli

CONTRIB = Path(__file__).resolve().parent.parent / "contrib"


def vmlab_args(command: str) -> list[str]:
    words = shlex.split(command.split(">>")[0])
    return words[words.index(next(w for w in words if w.endswith("vmlab"))) + 1:]


def assert_valid_cli(args: list[str]) -> None:
    """click parses the arguments (a usage error would raise)."""
    args = [a.replace("%i", "newton-aio").replace('"$CI_PROJECT_DIR/lab-report"', "out")
            for a in args]
    context = cli.make_context("vmlab", list(args), resilient_parsing=False)
    sub = cli.get_command(context, args[0])
    sub.make_context(args[0], args[1:])


def test_systemd_units_parse_and_run_vmlab_rebuild():
    service = configparser.ConfigParser(interpolation=None, strict=True)
    service.read(CONTRIB / "systemd" / "vmlab-rebuild@.service")
    assert service["Service"]["Type"] == "oneshot"
    assert_valid_cli(vmlab_args(service["Service"]["ExecStart"]))
    timer = configparser.ConfigParser(interpolation=None)
    timer.read(CONTRIB / "systemd" / "vmlab-rebuild@.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"


def test_crontab_line_has_five_fields_and_a_valid_command():
    line = next(l for l in (CONTRIB / "crontab").read_text().splitlines()
                if l and not l.startswith("#"))
    fields = line.split(None, 5)
    assert all(f.replace("*", "0").isdigit() for f in fields[:5])
    assert_valid_cli(vmlab_args(fields[5]))


def test_gitlab_job_keeps_the_junit_report():
    job = yaml.safe_load((CONTRIB / "ci" / "gitlab-ci.yml").read_text())["nightly-lab"]
    assert job["artifacts"]["reports"]["junit"] == "lab-report/junit.xml"
    assert_valid_cli(vmlab_args(job["script"][0]))
    assert "lab-report/junit.xml" in (CONTRIB / "ci" / "Jenkinsfile").read_text()


NIGHTLY = CONTRIB / "newton-aio-nightly.sh"


def script_vmlab_commands(path: Path) -> list[list[str]]:
    """The vmlab command lines of a shell script (continuations joined, redirections cut)."""
    text = path.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        words = shlex.split(line.split("#", 1)[0].replace("{", " ").replace(";", " "))
        if "vmlab" not in words:
            continue
        words = words[words.index("vmlab"):]
        cut = next((i for i, w in enumerate(words) if w[:1] == ">" or w[:2] == "2>"),
                   len(words))
        commands.append(words[:cut])
    return commands


def test_the_nightly_newton_job_runs_preflight_then_rebuild_then_status():
    subprocess.run(["sh", "-n", str(NIGHTLY)], check=True)
    commands = script_vmlab_commands(NIGHTLY)
    assert [c[1] for c in commands] == ["--version", "preflight", "rebuild", "status"]
    for command in commands[1:]:
        args = [a.replace("$profile", "newton-aio").replace('"', "")
                .replace("$out/rebuild", "out") for a in command[1:]]
        assert_valid_cli(args)
    assert "--json" in commands[1] and "--json" in commands[3]
    assert "--report-dir" in commands[2]
    service = configparser.ConfigParser(interpolation=None, strict=True)
    service.read(CONTRIB / "systemd" / "vmlab-newton-aio-nightly.service")
    assert service["Service"]["ExecStart"].endswith("/vmlab-newton-aio-nightly")
    timer = configparser.ConfigParser(interpolation=None)
    timer.read(CONTRIB / "systemd" / "vmlab-newton-aio-nightly.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Install"]["WantedBy"] == "timers.target"


FAKE_VMLAB = """#!/bin/sh
echo "$*" >> "$FAKE_VMLAB_CALLS"
case "$1" in
    preflight) echo '{"checks": []}'; exit "${FAKE_PREFLIGHT_EXIT:-0}" ;;
    rebuild) shift; while [ "$1" != --report-dir ]; do shift; done
             mkdir -p "$2/logs" && echo stage-log > "$2/logs/01-prep-1.log"
             exit "${FAKE_REBUILD_EXIT:-0}" ;;
    status) echo '{"lab": "newton-aio"}' ;;
    --version) echo "vmlab, version 0" ;;
esac
"""


def run_nightly(tmp_path, **exits: str) -> tuple[subprocess.CompletedProcess, list[str], Path]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "vmlab").write_text(FAKE_VMLAB)
    (bindir / "vmlab").chmod(0o755)
    calls, reports = tmp_path / "calls", tmp_path / "reports"
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "FAKE_VMLAB_CALLS": str(calls), "VMLAB_NIGHTLY_REPORTS": str(reports), **exits}
    result = subprocess.run(["sh", str(NIGHTLY)], env=env, capture_output=True, text=True)
    return result, calls.read_text().splitlines(), reports


def archived(reports: Path) -> set[str]:
    (archive,) = reports.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


def test_the_nightly_newton_job_leaves_a_report_to_send_back(tmp_path):
    result, calls, reports = run_nightly(tmp_path)
    assert result.returncode == 0, result.stderr
    assert [c.split()[0] for c in calls] == ["--version", "preflight", "rebuild", "status"]
    assert {"version.txt", "preflight.json", "status.json", "rebuild/logs/01-prep-1.log"} <= \
        archived(reports)


def test_a_failed_preflight_builds_nothing_but_still_reports(tmp_path):
    result, calls, reports = run_nightly(tmp_path, FAKE_PREFLIGHT_EXIT="1")
    assert result.returncode == 1
    assert [c.split()[0] for c in calls] == ["--version", "preflight", "status"]
    assert {"preflight.json", "status.json"} <= archived(reports)


def test_a_failed_stage_is_the_jobs_exit_status(tmp_path):
    result, _, reports = run_nightly(tmp_path, FAKE_REBUILD_EXIT="1")
    assert result.returncode == 1 and "rebuild/logs/01-prep-1.log" in archived(reports)


def test_readme_and_docs_say_plainly_that_newton_aio_has_not_run_and_how_to_run_it():
    root = CONTRIB.parent
    assert "newton-aio has not been run end to end" in (root / "README.md").read_text()
    doc = (root / "docs" / "newton-aio.md").read_text()
    status = doc.split("## Status: newton-aio has not been run end to end", 1)[1] \
        .split("\n## ", 1)[0]
    for needed in ("vmlab preflight --profile newton-aio", "vmlab create --profile newton-aio",
                   "vmlab status --lab newton-aio --json", "logs/",
                   "contrib/newton-aio-nightly.sh"):
        assert needed in status, needed
    assert NIGHTLY.is_file() and os.access(NIGHTLY, os.X_OK)

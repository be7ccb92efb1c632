"""The shipped scheduler examples: parseable, and calling vmlab the way the docs say."""
from __future__ import annotations

import configparser
import shlex
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

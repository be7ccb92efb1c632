"""Secrets audit on a real lab: its stages write, print, fail with and send to the serial
console the lab's generated secrets; no secret value may then appear in anything vmlab
printed (stdout and stderr, with --json and --debug) or wrote under its XDG dirs (state,
logs, run reports, failure records), except in the 0600 secrets file.

The lab is seeded (VMLAB_SEED_PASSWORDS, off vmlab's command line) with a value holding a
quote, double quotes, `$`, spaces and a backslash: it must reach the guest byte for byte,
through a command's environment as built-in stages hand it on, and never show in the
guest's process list while the command that uses it runs. The built-in `mariadb` and
`rabbitmq` stages take the same seed as their passwords: a stage after them logs in with
each (MariaDB's root from another OS user and no option file, RabbitMQ's openstack user by
rabbitmqctl and over AMQP), and a watcher running through both saw no password in `ps`.

Left out on purpose: `vmlab ssh` (it prints what the operator's own command prints) and
`vmlab openrc` (it prints a password by design, for an OpenStack lab).
"""
from __future__ import annotations

import html
import json
import os
import re
import stat
import time
from pathlib import Path

import pytest

from tests.lab_harness import REPO, virsh

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAB = "e2e-secrets"
PROFILE = str(REPO / "tests/data/profiles/secrets-audit.yaml")
MASK = "********"
SEED = 'it\'s "$HOME" \\x'


def files_under(root: Path, since: float | None = None, max_size: int | None = None):
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if not path.is_file():
                continue
            info = path.stat()
            if since is not None and info.st_mtime < since:
                continue
            if max_size is not None and info.st_size > max_size:
                continue
            yield path


def forms(value: str) -> set[str]:
    """A value as text, JSON and XML/HTML would carry it (a leak may be escaped)."""
    return {value, json.dumps(value)[1:-1], html.escape(value), html.escape(value, quote=False)}


def holds(text: str, secrets: dict[str, str]) -> list[str]:
    """The names of the secrets whose value, in any of its forms, is in ``text``."""
    return sorted(name for name, value in secrets.items()
                  if any(form in text for form in forms(value)))


def test_secret_values_appear_only_in_the_secrets_file(libvirtd, vmlab):
    started = time.time()
    printed: list[tuple[str, str]] = []

    def run(*args: str, expect: int = 0):
        result = vmlab(*args, expect=expect)
        printed.append((" ".join(args), result.stdout + result.stderr))
        return result

    def guest(command: str) -> str:
        return vmlab("ssh", "--lab", LAB, "--", command).stdout

    try:
        result = vmlab("create", "--profile", PROFILE, "--lab", LAB, "--no-provision",
                       env={"VMLAB_SEED_PASSWORDS": SEED})
        printed.append(("create", result.stdout + result.stderr))
        lab_dir = vmlab.state_dir / "labs" / LAB
        secrets_file = lab_dir / "secrets.json"
        secrets = json.loads(secrets_file.read_text())
        assert secrets == {"db_password": SEED, "admin_token": SEED, "root": SEED,
                           "rabbit": SEED}
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600

        # `check` fails while the flag exists; its snapshot (taken just before it) keeps it.
        guest("touch /root/fail-check")
        failed = run("--debug", "provision", "--lab", LAB, expect=1)
        assert "Traceback" in failed.stderr  # --debug shows the traceback...
        assert f"bad token {MASK}" in failed.stderr  # ...and the output's tail, masked
        assert f"bad password {MASK}" in failed.stderr
        for args in (("status", "--lab", LAB), ("status", "--lab", LAB, "--json"),
                     ("--debug", "status", "--lab", LAB, "--json"),
                     ("snapshots", "--lab", LAB, "--json"), ("ssh-config", "--lab", LAB)):
            run(*args)
        status = vmlab.json("status", "--lab", LAB)
        assert status["stages"][1]["status"] == "failed"
        assert MASK in status["stages"][1]["error"]

        # A nightly rebuild from `check` fails again: its run.json, junit.xml and copied logs.
        rebuilt = run("rebuild", "--profile", PROFILE, "--lab", LAB, "--from", "check",
                      "--json", expect=1)
        report = json.loads(rebuilt.stdout)
        failure = report["stages"][1]["failure"]
        assert f"bad token {MASK}" in failure["stdout_tail"]
        assert f"bad password {MASK}" in failure["stderr_tail"]
        run_dir = Path(report["run_dir"])
        assert (run_dir / "junit.xml").is_file()
        console = (run_dir / "logs" / "console.log").read_text()
        assert f"console {MASK}" in console  # the serial console got a secret, masked here

        run("rollback", "check", "--lab", LAB)
        guest("rm /root/fail-check")
        run("--debug", "resume", "--lab", LAB)
        # `logins` logged in with the seeded passwords that `mariadb` and `rabbitmq` set.
        stages = vmlab.json("status", "--lab", LAB)["stages"]
        assert [(r["name"], r["status"]) for r in stages] == [
            (name, "done") for name in ("configure", "check", "watch", "mariadb", "rabbitmq",
                                        "logins")]
        run("runs", "--lab", LAB, "--json")
        run("plan", "--profile", PROFILE, "--lab", LAB)
        run("plan", "--profile", PROFILE, "--lab", LAB, "--json")

        # The secrets really went where the stages sent them: there was something to leak,
        # and the audit finds a secret where one is (the operator's own `cat` prints it).
        shown = guest("cat /root/app.conf")
        assert shown == f"password={SEED}\n"
        assert holds(shown, secrets) == sorted(secrets)
        # Byte for byte through a command's environment, as built-in stages hand secrets on...
        assert guest("od -An -tx1 /root/seed.bin").split() == [f"{b:02x}" for b in SEED.encode()]
        # ...and in no process's command line while that command ran: the watcher saw the
        # command's own arguments (the canary), never the value.
        seen = guest("cat /root/ps.log")
        assert "vmlab-canary" in seen and "/root/seed.bin" in seen
        assert SEED not in seen
        # The same for the built-in stages: the watcher ran while rabbitmqctl set the
        # password (its own arguments are there: Debian's wrapper quotes them for `su`),
        # and no password ever was.
        seen = guest("cat /root/ps-builtin.log")
        assert re.search(r'add_user"? "?openstack', seen) and "mariadbd" in seen
        assert SEED not in seen

        leaks = [f"`vmlab {command}` printed {name}"
                 for command, text in printed for name in holds(text, secrets)]
        env = vmlab.env
        roots = [Path(env["XDG_STATE_HOME"]), Path(env["XDG_CONFIG_HOME"])]
        scanned = [path for root in roots for path in files_under(root)]
        # The image cache is shared between tests: only what was written during this one.
        scanned += list(files_under(Path(env["XDG_CACHE_HOME"]), since=started,
                                    max_size=64 << 20))
        names = {path.name for path in scanned}
        assert {"state.json", "vmlab.log", "01-configure-1.log", "02-check-1.log",
                "04-mariadb-1.log", "05-rabbitmq-1.log", "run.json", "junit.xml",
                "console.log", "secrets.json"} <= names, names
        holders = {path: holds(path.read_bytes().decode("utf-8", "replace"), secrets)
                   for path in scanned}
        leaks += [f"{path} holds {', '.join(found)}" for path, found in holders.items()
                  if found and path != secrets_file]
        domain = virsh("dumpxml", f"vmlab-{LAB}")
        leaks += [f"the domain XML holds {name}" for name in holds(domain, secrets)]
        assert leaks == []
        # ...and the one file that holds them is the lab's secrets file, readable by its owner.
        assert holders[secrets_file] == sorted(secrets)
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    finally:
        if (vmlab.state_dir / "labs" / LAB / "state.json").is_file():
            vmlab("destroy", "--lab", LAB, "--yes")
    assert f"vmlab-{LAB}" not in virsh("list", "--all", "--name").split()

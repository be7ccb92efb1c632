"""What the operator sees while a stage runs: the guest command running now and how long it
has run, secrets redacted; on a terminal a ticking spinner line, otherwise a line per
command and "still running" lines for a long one. Against a real sshd on 127.0.0.1."""
from __future__ import annotations

import io
import re
import textwrap

import pytest

from tests.sshd import FakeGuest, Sshd
from vmlab import remote
from vmlab.cli.progress import CliProgress
from vmlab.lab import Lab
from vmlab.profile import load_profile
from vmlab.progress import CommandEvent, format_duration
from vmlab.remote import Target, open_session
from vmlab.stages import resolve_stages
from vmlab.state import LabFiles, LabState, StageRecord, now

SECRET = "s3cret-Value-42"
STAMP = re.compile(r"^\[\d\d:\d\d:\d\d\] ")
DURATION = r"(\d+h)?(\d+m)?\d+s"


def plain_lines(stream: io.StringIO) -> list[str]:
    """The lines written, each without its timestamp (which every line must have)."""
    lines = stream.getvalue().splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    return [STAMP.sub("", line) for line in lines]


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def test_plain_lines_show_each_command_redacted_and_how_long_a_long_one_runs(sshd, tmp_path):
    out = io.StringIO()
    progress = CliProgress(out, still_every=1)
    assert not progress.tty
    target = Target("127.0.0.1", sshd.port, "root", sshd.client_key, tmp_path / "known_hosts")
    with progress.waiting("stage prep: install") as waiting:
        with open_session(target, secrets=[SECRET], on_command=waiting.command) as session:
            session.run("echo hello")
            session.run(f"echo {SECRET} >/dev/null")
            session.put(f"password={SECRET}\n", "/tmp/vmlab-progress-test", mode=0o600)
            session.run("sleep 2.5")
            session.run("cat <<'EOF'\nfirst\nsecond\nEOF")
    text = out.getvalue()
    assert SECRET not in text
    lines = plain_lines(out)
    prefix = "stage prep: install: "
    started = [line for line in lines if not re.search(r": (still running|finished): ", line)]
    assert started[:-1] == ["stage prep: install ...",
                            prefix + "echo hello",
                            prefix + "echo ******** >/dev/null",
                            prefix + f"write /tmp/vmlab-progress-test ({len(SECRET) + 10} bytes)",
                            prefix + "sleep 2.5",
                            prefix + "cat <<'EOF'…"]  # one line per command, its first line
    assert re.fullmatch("stage prep: install: done in " + DURATION, started[-1])
    # the long one: "still running" lines a second apart, then how it ended and its time
    still = [int(m.group(1)) for line in lines if (m := re.fullmatch(
        re.escape(prefix) + r"still running: sleep 2\.5 \((\d)s\)", line))]
    assert still and still == sorted(set(still)) and still[0] >= 1
    assert any(re.fullmatch(re.escape(prefix) + r"finished: sleep 2\.5 \(exit 0, [2-9]s\)", line)
               for line in lines)


def test_a_watcher_that_fails_does_not_fail_the_command(sshd, tmp_path):
    def broken(event: CommandEvent) -> None:
        raise BrokenPipeError("stderr is gone")

    target = Target("127.0.0.1", sshd.port, "root", sshd.client_key, tmp_path / "known_hosts")
    with open_session(target, on_command=broken) as session:
        assert session.run("echo still works").stdout == "still works\n"


@pytest.mark.parametrize("waited, event, width, expected", [
    (390, CommandEvent("apt-get install -y chrony", "running", 150), 100,
     "stage prep: install (6m30s): apt-get install -y chrony (2m30s)"),
    (5, CommandEvent("echo hi", "started"), 100, "stage prep: install (5s): echo hi (0s)"),
    (3725, CommandEvent("cat <<'EOF' >/etc/hosts\n127.0.0.1 x\nEOF", "running", 2), 100,
     "stage prep: install (1h02m05s): cat <<'EOF' >/etc/hosts… (2s)"),
    (60, CommandEvent("x" * 300, "running", 61), 80,
     "stage prep: install (1m00s): " + "x" * 38 + "… (1m01s)"),
    (60, CommandEvent("echo hi", "finished", 0.1, 0), 100, "stage prep: install (1m00s)"),
    (60, None, 100, "stage prep: install (1m00s)"),
])
def test_the_spinner_line_shows_the_running_command_and_its_time(waited, event, width,
                                                                  expected):
    text = CliProgress.status_text("stage prep: install", waited, event, width)
    assert text == expected
    assert len(text) <= width - 2  # fits beside the spinner


@pytest.mark.parametrize("seconds, shown", [(0, "0s"), (59.9, "59s"), (60, "1m00s"),
                                             (150, "2m30s"), (3725, "1h02m05s")])
def test_durations_read_as_hours_minutes_seconds(seconds, shown):
    assert format_duration(seconds) == shown


class TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_spinner_ticks_instead_of_printing_lines(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.delenv("TERM", raising=False)
    out = TerminalStream()
    progress = CliProgress(out)
    assert progress.tty
    with progress.waiting("stage prep: install") as waiting:
        for elapsed in (0, 1, 2):
            waiting.command(CommandEvent("apt-get install -y mariadb-server",
                                         "started" if elapsed == 0 else "running", elapsed))
    text = out.getvalue()
    assert "stage prep: install (0s): apt-get install -y mariadb-server (2s)" in text
    assert text.count("\n") <= 1  # one line, redrawn in place: no line per update
    assert not STAMP.search(text) and "still running" not in text


# -- a stage through the orchestrator, on a fake guest that reboots ---------------------------

PROFILE = """\
extends: demo
name: progress-test
stages:
  - name: prepare-host
    reboot: true
    run:
      - echo preparing
      - sleep 2.5
    verify:
      - test "$(cat {boot_id})" = boot-2
"""

# A slow shutdown: services keep answering for longer than the 3 s the old code slept,
# then systemd is "stopping", then the new boot starts and settles.
SLOW_REBOOT = """\
sleep 4; echo stopping > state; sleep 1
echo boot-2 > boot_id; echo starting > state; sleep 1; echo running > state
"""


@pytest.fixture
def lab_on_guest(tmp_path, monkeypatch):
    """A Lab whose VM is a fake guest on loopback sshd (run_stage needs no hypervisor)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    guest = FakeGuest(tmp_path / "guest", state="running")
    guest.on_reboot(SLOW_REBOOT)
    monkeypatch.setattr(remote, "BOOT_ID_FILE", str(guest.boot_id))
    monkeypatch.setattr(remote, "RETRY_EVERY", 0.2)
    guest.start()
    profile = tmp_path / "progress-test.yaml"
    profile.write_text(textwrap.dedent(PROFILE.format(boot_id=guest.boot_id)))
    loaded = load_profile(str(profile))
    stages = resolve_stages(loaded)
    files = LabFiles("progress-test")
    files.root.mkdir(parents=True)
    state = LabState(lab="progress-test", profile="progress-test", profile_path=str(profile),
                     driver="libvirt", uri="qemu:///system", vm_name="vmlab-progress-test",
                     hypervisor=loaded.profile.hypervisor, ssh=loaded.profile.ssh,
                     snapshots=loaded.profile.snapshots,
                     created=now(), stages=[StageRecord(name=s.name) for s in stages])
    out = io.StringIO()
    lab = Lab(files, state, loaded, stages, driver=None,  # type: ignore[arg-type]
              progress=CliProgress(out, still_every=1))
    target = Target("127.0.0.1", guest.port, "root", guest.client_key, files.known_hosts)
    monkeypatch.setattr(lab, "target", lambda ref: target)
    yield lab, out, guest
    guest.stop()


def test_a_stage_shows_its_commands_and_waits_for_the_guest_to_really_reboot(lab_on_guest):
    lab, out, guest = lab_on_guest
    lab.run_stage(None, lab.stages[0], lab.state.stages[0])  # type: ignore[arg-type]
    assert lab.state.stages[0].status == "done"  # verify ran on the new boot
    assert guest.reboot_calls() == 1
    lines = plain_lines(out)
    started = [line for line in lines if not re.search(r": (still running|finished): ", line)]
    assert started == [
        "stage prepare-host: install ...",
        "stage prepare-host: install: echo preparing",
        "stage prepare-host: install: sleep 2.5",
        f"stage prepare-host: install: cat {guest.boot_id}",
        "stage prepare-host: install: (sleep 1; systemctl reboot) >/dev/null 2>&1 &",
        started[5],
        "waiting for vmlab-progress-test to reboot ...",
        started[7],
        "stage prepare-host: verify ...",
        f'stage prepare-host: verify: test "$(cat {guest.boot_id})" = boot-2',
        started[10],
        started[11]]
    assert re.fullmatch("stage prepare-host: install: done in " + DURATION, started[5])
    assert re.fullmatch("waiting for vmlab-progress-test to reboot: done in " + DURATION,
                        started[7])
    assert re.fullmatch("stage prepare-host: verify: done in " + DURATION, started[10])
    assert re.fullmatch(rf"stage prepare-host done \({DURATION}\)", started[11])
    assert "stage prepare-host: install: still running: sleep 2.5 (1s)" in lines

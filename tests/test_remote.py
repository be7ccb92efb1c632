"""The SSH command runner against a real sshd on 127.0.0.1."""
from __future__ import annotations

import stat
import threading
import time

import pytest

from tests.sshd import FakeGuest, Sshd, free_port
from vmlab import remote
from vmlab.errors import InfrastructureError, RemoteCommandFailed, WaitTimeout
from vmlab.remote import Target, open_session, redact, request_reboot, wait_for_ssh

SECRET = "s3cret-Value-42"


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "sshd").start()
    yield server
    server.stop()


def target_for(server: Sshd, tmp_path, jump=None) -> Target:
    return Target("127.0.0.1", server.port, "root", server.client_key,
                  tmp_path / "known_hosts", jump)


@pytest.fixture
def session(sshd, tmp_path):
    with open_session(target_for(sshd, tmp_path), log_path=tmp_path / "stage.log",
                      secrets=[SECRET]) as s:
        yield s


def test_outputs_and_exit_codes_are_exact(session):
    result = session.run("printf 'no newline'; printf 'err' >&2", check=False)
    assert (result.stdout, result.stderr, result.exit_code) == ("no newline", "err", 0)
    assert session.run("echo two; echo lines").stdout == "two\nlines\n"
    assert session.run("exit 3", check=False).exit_code == 3
    assert session.run("kill -9 $BASHPID", check=False).exit_code == 137


def test_exit_cd_and_set_e_do_not_leak_into_later_commands(session):
    session.run("cd /tmp; set -e; exit 4", check=False)
    assert session.run("pwd").stdout.strip() != "/tmp"
    assert session.run("false; echo still").stdout == "still\n"


def test_large_output_is_complete(session):
    result = session.run("head -c 5000000 /dev/zero | tr '\\0' 'x'")
    assert len(result.stdout) == 5_000_000


def test_syntax_error_does_not_break_the_shell(session):
    assert session.run("echo 'unbalanced", check=False).exit_code != 0
    assert session.run("echo ok").stdout == "ok\n"


def test_failure_raises_with_command_code_and_tails(session):
    with pytest.raises(RemoteCommandFailed) as info:
        session.run("seq 100; echo boom >&2; exit 5")
    error = info.value
    assert error.returncode == 5 and "exit 5" in error.command
    assert error.stdout_tail.splitlines()[-1] == "100" and len(error.stdout_tail.splitlines()) == 20
    assert "boom" in error.stderr_tail


def test_env_and_input_reach_the_command(session):
    assert session.run("echo $GREETING", env={"GREETING": "hello 'world'"}).stdout == "hello 'world'\n"
    assert session.run("tr a-z A-Z", input="abc\n").stdout == "ABC\n"


def test_timeout_raises_instead_of_hanging(session, tmp_path):
    """The wait ends at the timeout, while the command still runs: its marker is not there."""
    finished = tmp_path / "finished"
    with pytest.raises(WaitTimeout, match="within 1s"):
        session.run(f"sleep 30; touch {finished}", timeout=1)
    assert not finished.exists()


def test_secrets_are_redacted_in_log_and_errors(session, tmp_path):
    with pytest.raises(RemoteCommandFailed) as info:
        session.run(f"echo {SECRET}; echo {SECRET} >&2; false")
    assert SECRET not in str(info.value)
    session.put(f"password={SECRET}\n", "/tmp/vmlab-test-secret", mode=0o600)
    session.close()
    text = (tmp_path / "stage.log").read_text()
    assert SECRET not in text and "********" in text
    assert "exit 1" in text and "$ echo ********; echo ******** >&2; false" in text
    assert stat.S_IMODE((tmp_path / "stage.log").stat().st_mode) == 0o600


def test_put_writes_atomically_with_mode(session):
    session.put("content\n", "/tmp/vmlab-put-test", mode=0o640)
    assert session.run("cat /tmp/vmlab-put-test").stdout == "content\n"
    assert session.run("stat -c %a /tmp/vmlab-put-test").stdout.strip() == "640"
    assert session.run("ls /tmp | grep -c 'vmlab-put-test.vmlab-' || true").stdout.strip() == "0"
    assert session.get("/tmp/vmlab-put-test") == b"content\n"
    assert session.exists("/tmp/vmlab-put-test") and not session.exists("/nonexistent")


def test_host_key_is_pinned_at_first_contact(sshd, tmp_path):
    target = target_for(sshd, tmp_path)
    with open_session(target) as s:
        s.run("true")
    assert f"[127.0.0.1]:{sshd.port}" in target.known_hosts.read_text()
    with open_session(target) as s:  # same key: accepted
        s.run("true")
    sshd.stop()
    sshd.new_host_key()
    sshd.start()
    with pytest.raises(InfrastructureError, match="host key .* has changed"):
        open_session(target)


def test_jump_host_reaches_the_target(sshd, tmp_path):
    gateway = Sshd(tmp_path / "gateway", client_key=sshd.client_key).start()
    try:
        target = target_for(sshd, tmp_path, jump=("root", "127.0.0.1", gateway.port, None))
        with open_session(target) as s:
            assert s.run("echo through").stdout == "through\n"
    finally:
        gateway.stop()


def test_a_command_without_its_own_timeout_gets_the_sessions(sshd, tmp_path):
    """A hung guest keeps the connection alive: only the default timeout ends the wait."""
    finished = tmp_path / "finished"
    with open_session(target_for(sshd, tmp_path), command_timeout=1) as session:
        with pytest.raises(WaitTimeout, match="within 1s") as raised:
            session.run(f"sleep 30; touch {finished}")
    assert not finished.exists()
    assert "command_timeout_minutes" in raised.value.hint


def test_dropped_connection_raises_instead_of_hanging(sshd, session):
    threading.Timer(0.5, sshd.kill_connections).start()
    with pytest.raises(InfrastructureError, match="lost"):
        session.run("sleep 20", timeout=15)


def test_wait_for_ssh_times_out_with_a_clear_message(tmp_path):
    target = Target("127.0.0.1", free_port(), "root", tmp_path / "none", tmp_path / "kh")
    with pytest.raises(WaitTimeout, match="did not answer within 2s"):
        wait_for_ssh(target, timeout=2)


def test_wait_for_ssh_succeeds_when_sshd_comes_up_later(tmp_path):
    server = Sshd(tmp_path / "late")
    threading.Timer(2, server.start).start()
    try:
        wait_for_ssh(target_for(server, tmp_path), timeout=20)
    finally:
        time.sleep(0.1)
        server.stop()


@pytest.fixture
def guest(tmp_path, monkeypatch):
    """A fake guest on loopback sshd: systemd's state and the boot id are the test's."""
    server = FakeGuest(tmp_path / "guest", state="starting")
    monkeypatch.setattr(remote, "BOOT_ID_FILE", str(server.boot_id))
    monkeypatch.setattr(remote, "RETRY_EVERY", 0.2)  # the tests count attempts, not seconds
    server.start()
    yield server
    server.stop()


def test_wait_for_ssh_times_out_while_the_guests_services_start(guest, tmp_path):
    with pytest.raises(WaitTimeout, match="services are still starting"):
        wait_for_ssh(target_for(guest, tmp_path), timeout=3)


@pytest.mark.parametrize("unsettled", ["initializing", "starting", "stopping"])
def test_wait_for_ssh_waits_until_the_guests_boot_has_settled(guest, tmp_path, unsettled):
    """Each unsettled answer is asked again; the wait ends at the first settled one."""
    guest.set_state(unsettled)
    wait_for_ssh(target_for(guest, tmp_path), timeout=30,
                 progress=lambda _: guest.set_state("degraded"))
    answers = guest.answers()
    assert answers[0] == unsettled and answers[-1] == "degraded"
    assert answers.count("degraded") == 1


def test_wait_for_ssh_after_a_reboot_waits_for_a_new_boot(guest, tmp_path):
    """A guest that still answers from the boot before the reboot has not rebooted yet,
    however settled its services look."""
    guest.set_state("running")
    target = target_for(guest, tmp_path)
    with pytest.raises(WaitTimeout, match="did not reboot within 3s"):
        wait_for_ssh(target, timeout=3, after_boot="boot-1")
    details: list[str] = []

    def new_boot_after_two_attempts(detail: str) -> None:
        details.append(detail)
        if len(details) == 2:
            guest.boot_id.write_text("boot-2\n")
    wait_for_ssh(target, timeout=30, after_boot="boot-1", progress=new_boot_after_two_attempts)
    assert len(details) == 2
    assert all("still answers from the boot before the reboot" in d for d in details)


def test_request_reboot_returns_the_boot_id_it_ends(guest, tmp_path):
    with open_session(target_for(guest, tmp_path)) as session:
        assert request_reboot(session) == "boot-1"
    deadline = time.monotonic() + 10
    while guest.reboot_calls() == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert guest.reboot_calls() == 1


def test_wait_for_ssh_accepts_a_guest_without_systemd(sshd, tmp_path):
    wait_for_ssh(target_for(sshd, tmp_path), timeout=10)


def test_redact_masks_every_secret():
    assert redact("a pass1234 b pass12345", ["pass1234", "pass12345"]) == "a ******** b ********"


def test_any_command_text_survives_byte_for_byte(session):
    text = "ü \\ 'single' \"double\" $HOME `x` \t tab ;|&<>*?~!#{}[]"
    assert session.run(f"cat <<'EOF'\n{text}\nEOF").stdout == text + "\n"
    assert session.run("printf '%s\\n' \"$((6 * 7))\"").stdout == "42\n"

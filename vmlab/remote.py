"""SSH into the guest: one Fabric connection per stage and a fast, exact command runner.

Fabric's ``Connection.run`` opens a new exec channel per command (about 100 ms each to a
guest). A stage runs hundreds of commands, so a Session keeps ONE ``bash`` open on one
channel and feeds it commands; each command is followed by a random marker carrying its
exit status, on stdout and on stderr, so outputs and exit codes stay exact (about a
millisecond per command). Each command runs in a subshell with its own stdin, so ``exit``,
``cd`` or ``set -e`` inside it cannot disturb the shell or the stream of commands.

Every command, its exit code, duration and output go to the stage's log file, with every
secret value redacted (in exception messages too). This runner is the one place where a
failed command is detected: ``check=True`` raises RemoteCommandFailed. An ``on_command``
watcher hears of each command as logged (redacted) when it starts, every second while it
runs, and when it ends: that is how the operator sees what a long stage is doing.
"""
from __future__ import annotations

import base64
import io
import logging
import os
import select
import shlex
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping

import paramiko
from fabric import Config, Connection

from vmlab.errors import InfrastructureError, RemoteCommandFailed, WaitTimeout
from vmlab.progress import CommandEvent, CommandWatcher
from vmlab.redaction import MASK, redact  # noqa: F401 - re-exported for callers
from vmlab.sshtarget import Target  # noqa: F401 - re-exported for callers

log = logging.getLogger("vmlab.remote")
# paramiko logs every failed connection attempt with a traceback; vmlab reports them itself.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
TAIL_LINES = 20
#: Seconds between SSH keepalives. A guest that was reset mid-command never closes the
#: connection; only traffic from this side makes it answer with a reset, which ends the wait.
KEEPALIVE = 5
#: Seconds a command may run when its caller gives no timeout: a guest that hangs (rather
#: than resets) keeps the connection alive, and only this ends the wait.
COMMAND_TIMEOUT = 3600
#: Seconds between "still running" events to an ``on_command`` watcher.
TICK = 1.0
#: The guest kernel's id of the current boot: a new one after every reboot.
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
#: Seconds between two attempts of ``wait_for_ssh``.
RETRY_EVERY = 2.0


@dataclass(frozen=True)
class Result:
    command: str  # as logged: secrets redacted
    exit_code: int
    stdout: str
    stderr: str
    duration: float


_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-./:=,+@%")


def _ansi_c(text: str) -> str:
    """``text`` as one bash $'...' word: any command survives the trip byte for byte,
    and bash decodes it itself (no extra process per command)."""
    return "$'" + "".join(chr(b) if b in _SAFE else f"\\x{b:02x}"
                          for b in text.encode()) + "'"


def shell_script(command: str, env: Mapping[str, str] | None, input: str | None,
                 marker: str) -> str:
    """What the session's bash reads to run ``command``: ``env`` exported and ``input`` as
    its stdin, both inside this text (bash's own input), so no value is in any argv."""
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
    body = f"( {exports}eval {_ansi_c(command)} )"
    if input is None:
        body += " </dev/null"
    else:
        data = base64.b64encode(input.encode()).decode()
        body = f"printf %s {data} | base64 -d | {body}"
    return (f"{body}; __vmlab_rc=$?; printf '\\n{marker} %d\\n' $__vmlab_rc; "
            f"printf '\\n{marker}\\n' >&2\n")


class _Announcer:
    """Tells a watcher that a command started, still runs (every TICK seconds) and ended.
    A watcher that fails is logged and ignored: showing progress must never fail a stage."""

    def __init__(self, watcher: CommandWatcher | None, what: str) -> None:
        self.watcher, self.what = watcher, what
        self.started = self._last = time.monotonic()
        self._send("started", 0.0, None)

    def tick(self) -> None:
        now = time.monotonic()
        if now - self._last >= TICK:
            self._last = now
            self._send("running", now - self.started, None)

    def end(self, exit_code: int) -> None:
        self._send("finished", time.monotonic() - self.started, exit_code)

    def _send(self, state: Literal["started", "running", "finished"], elapsed: float,
              exit_code: int | None) -> None:
        if self.watcher is None:
            return
        try:
            self.watcher(CommandEvent(self.what, state, elapsed, exit_code))
        except Exception:  # noqa: BLE001 - a broken display must not fail the command
            log.debug("progress watcher failed", exc_info=True)


class _PinFirstKey(paramiko.MissingHostKeyPolicy):
    """Record a host's key on first contact; paramiko itself refuses a changed key later."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self.known_hosts))


def _connection(host: str, port: int, user: str, key_file: str | None, known_hosts: Path,
                timeout: float, gateway: Connection | None = None) -> Connection:
    config = Config(overrides={"load_ssh_configs": False})
    kwargs: dict = {"look_for_keys": False, "allow_agent": False, "banner_timeout": timeout,
                    "auth_timeout": timeout}
    if key_file:
        kwargs["key_filename"] = str(key_file)
    conn = Connection(host, user=user, port=port, config=config, connect_kwargs=kwargs,
                      connect_timeout=int(max(timeout, 1)), gateway=gateway)
    if known_hosts.is_file():
        conn.client.load_host_keys(str(known_hosts))
    conn.client.set_missing_host_key_policy(_PinFirstKey(known_hosts))
    return conn


def _open_connection(target: Target, timeout: float) -> Connection:
    gateway = None
    if target.jump:
        user, host, port, key = target.jump
        gateway = _connection(host, port, user, key or str(target.key_file), target.known_hosts,
                              timeout)
    conn = _connection(target.host, target.port, target.user, str(target.key_file),
                       target.known_hosts, timeout, gateway)
    try:
        conn.open()
    except paramiko.BadHostKeyException as exc:
        conn.close()
        raise InfrastructureError(
            f"the SSH host key of {target.describe()} has changed: refusing to connect",
            hint=f"if the lab's VM was recreated, remove its entry from {target.known_hosts}; "
                 "otherwise something else answers on that address") from exc
    except (paramiko.SSHException, OSError, EOFError) as exc:
        conn.close()
        raise InfrastructureError(f"cannot connect to {target.describe()}: {exc}",
                                  hint="is the VM running? see `vmlab status`") from exc
    return conn


class Session:
    """One SSH connection and one persistent shell; use as a context manager."""

    def __init__(self, conn: Connection, target: Target, log_path: Path | None,
                 secrets: Iterable[str], open_timeout: float = 15,
                 command_timeout: float = COMMAND_TIMEOUT,
                 on_command: CommandWatcher | None = None) -> None:
        self.conn = conn
        self.command_timeout = command_timeout
        self.on_command = on_command
        self.target = target
        self.secrets = [s for s in secrets if s]
        self._log = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._log = os.fdopen(fd, "a", encoding="utf-8")
            self._write_log(f"# session {target.describe()}")
        transport = conn.client.get_transport()
        assert transport is not None
        transport.set_keepalive(KEEPALIVE)
        self._channel = transport.open_session(timeout=open_timeout)
        self._channel.exec_command("exec bash --noprofile --norc")
        self._fileno = self._channel.fileno()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -------------------------------------------------------------------------
    def run(self, command: str, *, check: bool = True, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float | None = None,
            hide: bool = False) -> Result:
        """Run ``command`` with bash in the guest.

        ``hide``: log only the command and its exit code (for output that holds secrets).
        ``timeout``: seconds; without it, the session's ``command_timeout``. On a timeout
        the session is closed: the command may still be running in the guest.
        """
        return self._run(command, check=check, env=env, input=input, timeout=timeout,
                         hide=hide, watcher=self.on_command)

    def _run(self, command: str, *, check: bool, env: Mapping[str, str] | None,
             input: str | None, timeout: float | None, hide: bool,
             watcher: CommandWatcher | None) -> Result:
        if timeout is None:
            timeout = self.command_timeout
        shown = redact(command, self.secrets)
        self._write_log(f"$ {shown}")
        marker = uuid.uuid4().hex
        script = self._script(command, env, input, marker)
        started = time.monotonic()
        announcer = _Announcer(watcher, shown)
        try:
            self._channel.sendall(script.encode())
            stdout, stderr, code = self._collect(marker, timeout, shown, announcer.tick)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            self.close()
            raise InfrastructureError(
                f"the SSH connection to {self.target.describe()} was lost while running: "
                f"{shown} ({exc})",
                hint="the guest may have rebooted or stopped; see `vmlab status`") from exc
        duration = time.monotonic() - started
        announcer.end(code)
        result = Result(shown, code, stdout, stderr, duration)
        self._log_result(result, hide)
        if check and code != 0:
            raise RemoteCommandFailed(shown, code, self._tail(stdout), self._tail(stderr))
        return result

    def _script(self, command: str, env: Mapping[str, str] | None, input: str | None,
                marker: str) -> str:
        return shell_script(command, env, input, marker)

    def _collect(self, marker: str, timeout: float, shown: str,
                 tick: Callable[[], None]) -> tuple[str, str, int]:
        out, err = bytearray(), bytearray()
        out_end, err_end = f"\n{marker} ".encode(), f"\n{marker}\n".encode()
        deadline = time.monotonic() + timeout
        while True:
            while self._channel.recv_ready():
                out += self._channel.recv(1 << 16)
            while self._channel.recv_stderr_ready():
                err += self._channel.recv_stderr(1 << 16)
            at = out.find(out_end)
            if at >= 0 and out.endswith(b"\n") and err.endswith(err_end):
                code = int(out[at + len(out_end):].strip())
                return (out[:at].decode("utf-8", "replace"),
                        err[:-len(err_end)].decode("utf-8", "replace"), code)
            if self._channel.closed or self._channel.exit_status_ready() \
                    or self._channel.eof_received:
                raise EOFError("the remote shell ended")
            wait = deadline - time.monotonic()
            if wait <= 0:
                self.close()
                raise WaitTimeout(f"command did not finish within {timeout:.0f}s: {shown}",
                                  hint="the command may still run in the guest (the stage's "
                                       "SSH session was closed); if it only needs longer, "
                                       "raise ssh.command_timeout_minutes in the profile")
            select.select([self._fileno], [], [], min(wait, TICK))
            tick()

    # -- files ----------------------------------------------------------------------------
    def put(self, content: str | bytes, path: str, mode: int = 0o644) -> None:
        """Write a file in the guest atomically (a temporary name, then mv)."""
        data = content.encode() if isinstance(content, str) else content
        self._put_stream(io.BytesIO(data), path, mode, f"write {path} ({len(data)} bytes)")

    def upload(self, local_path: str, path: str, mode: int = 0o644) -> None:
        """Copy a local file into the guest atomically."""
        size = Path(local_path).stat().st_size
        with open(local_path, "rb") as handle:
            self._put_stream(handle, path, mode, f"upload {local_path} to {path} ({size} bytes)")

    def _put_stream(self, stream, path: str, mode: int, what: str) -> None:
        """``what``: the file as the log and the watcher show it, e.g. "write PATH (N bytes)"."""
        temporary = f"{path}.vmlab-{uuid.uuid4().hex[:8]}"
        announcer = _Announcer(self.on_command, redact(what, self.secrets))
        try:
            self.conn.put(stream, remote=temporary)
        except (OSError, paramiko.SSHException) as exc:
            raise InfrastructureError(f"cannot write {path} in the guest: {exc}",
                                      hint="is the directory there and the disk not full?") \
                from exc
        self._write_log(f"# {what}, mode {mode:04o}")
        result = self._run(f"chmod {mode:o} {shlex.quote(temporary)} && "
                           f"mv -f {shlex.quote(temporary)} {shlex.quote(path)}", check=True,
                           env=None, input=None, timeout=None, hide=True, watcher=None)
        announcer.end(result.exit_code)

    def get(self, path: str) -> bytes:
        buffer = io.BytesIO()
        try:
            self.conn.get(path, local=buffer)
        except (OSError, paramiko.SSHException) as exc:
            raise InfrastructureError(f"cannot read {path} in the guest: {exc}") from exc
        return buffer.getvalue()

    def exists(self, path: str) -> bool:
        return self.run(f"test -e {shlex.quote(path)}", check=False).exit_code == 0

    def close(self) -> None:
        try:
            self._channel.close()
        except Exception:  # noqa: BLE001 - closing a broken channel must not raise
            pass
        self.conn.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- logging --------------------------------------------------------------------------
    def _write_log(self, line: str) -> None:
        if self._log is not None:
            stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
            self._log.write(f"[{stamp}] {redact(line, self.secrets)}\n")
            self._log.flush()

    def _log_result(self, result: Result, hide: bool) -> None:
        if self._log is None:
            return
        if not hide:
            for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
                if text:
                    body = redact(text, self.secrets).rstrip("\n").replace("\n", "\n    ")
                    self._log.write(f"  {name}:\n    {body}\n")
        self._write_log(f"exit {result.exit_code} ({result.duration:.2f}s)")

    def _tail(self, text: str) -> str:
        return redact("\n".join(text.rstrip("\n").splitlines()[-TAIL_LINES:]), self.secrets)


def open_session(target: Target, *, log_path: Path | None = None, secrets: Iterable[str] = (),
                 connect_timeout: float = 15, command_timeout: float = COMMAND_TIMEOUT,
                 on_command: CommandWatcher | None = None) -> Session:
    conn = _open_connection(target, connect_timeout)
    try:
        return Session(conn, target, log_path, secrets, open_timeout=connect_timeout,
                       command_timeout=command_timeout, on_command=on_command)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        conn.close()
        raise InfrastructureError(f"cannot start a shell on {target.describe()}: {exc}") from exc


#: Succeeds once systemd has finished starting the guest's services ("running" or
#: "degraded"; "offline" or no systemctl: a guest without systemd); sshd answers well before
#: MariaDB or Apache do, above all without KVM. "stopping" is a guest on its way down (a
#: reboot asked for), not one that has settled.
BOOT_SETTLED = ('case "$(systemctl is-system-running 2>/dev/null)" in '
                'initializing|starting|stopping) exit 75;; esac')
#: The exit code of the readiness check while SSH still answers from the boot before a reboot.
SAME_BOOT = 76


def request_reboot(session: Session) -> str:
    """Ask the guest to reboot (a second from now, so this command returns first); returns
    the boot id it had, for ``wait_for_ssh(after_boot=...)``."""
    boot_id = session.run(f"cat {BOOT_ID_FILE}").stdout.strip()
    session.run("(sleep 1; systemctl reboot) >/dev/null 2>&1 &", check=False)
    return boot_id


def _readiness_check(after_boot: str | None) -> str:
    if after_boot is None:
        return BOOT_SETTLED
    return (f'[ "$(cat {BOOT_ID_FILE})" != {shlex.quote(after_boot)} ] || exit {SAME_BOOT}; '
            + BOOT_SETTLED)


def wait_for_ssh(target: Target, *, timeout: float,
                 progress: Callable[[str], None] = lambda _: None,
                 then: Callable[[Session], None] | None = None,
                 after_boot: str | None = None) -> None:
    """Retry until the guest's sshd accepts the lab's key and its boot has settled;
    ``then`` runs in that same session (one SSH handshake less).

    ``after_boot``: the boot id read before a reboot was asked for (``request_reboot``).
    SSH answering from that same boot means the guest has not gone down yet: keep waiting
    until it answers from a new one.
    """
    deadline = time.monotonic() + timeout
    last_error = "nothing answered"
    attempt = 0
    check = _readiness_check(after_boot)
    while time.monotonic() < deadline:
        attempt += 1
        try:
            with open_session(target, connect_timeout=min(10, timeout)) as session:
                code = session.run(check, check=False, timeout=min(30, timeout)).exit_code
                if code == 0:
                    if then is not None:
                        then(session)
                    return
            last_error = ("SSH still answers from the boot before the reboot"
                          if code == SAME_BOOT else
                          "SSH answers; the guest's services are still starting or stopping")
        except InfrastructureError as exc:
            if "host key" in exc.message and "changed" in exc.message:
                raise
            last_error = str(exc.__cause__ or exc)
        except (socket.timeout, paramiko.SSHException, OSError, EOFError) as exc:
            last_error = str(exc)
        progress(f"attempt {attempt}: {last_error}")
        time.sleep(min(RETRY_EVERY, max(0.0, deadline - time.monotonic())))
    if last_error.startswith("SSH still answers"):
        raise WaitTimeout(f"the guest at {target.describe()} did not reboot within "
                          f"{timeout:.0f}s: SSH still answers from the boot before",
                          hint="something in the guest may hold the shutdown up: see "
                               "`systemctl list-jobs` in it (`vmlab ssh`)")
    raise WaitTimeout(f"SSH on {target.describe()} did not answer within {timeout:.0f}s "
                      f"(last error: {last_error})",
                      hint="the guest may still be booting or failed to boot: read its "
                           "console log (`vmlab status` shows where)")

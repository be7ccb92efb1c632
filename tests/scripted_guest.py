"""A scripted guest for the fast tests of orchestration: `Lab` reaches it through the
GuestAccess seam as it would reach a real guest over SSH. It records every command, fails
the ones a script says to (as a guest command fails: RemoteCommandFailed), writes each
command and its exit code to the stage's log as the real session does, and keeps a boot id
that changes when a reboot is asked for."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from vmlab.errors import RemoteCommandFailed
from vmlab.plan import PlannedResult
from vmlab.remote import BOOT_ID_FILE


@dataclass
class ScriptedGuest:
    #: Commands holding a key fail (exit 7) while its count is above zero; each failure
    #: uses one up (-1: fail for ever).
    failures: dict[str, int] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    #: Every readiness wait, with the boot id it waited to see replaced (None: any boot).
    waits: list[str | None] = field(default_factory=list)
    boot_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    # -- GuestAccess ---------------------------------------------------------------------
    def open(self, target, *, log_path: Path | None, secrets, command_timeout,
             on_command) -> "ScriptedSession":
        return ScriptedSession(self, log_path)

    def wait_ready(self, target, *, timeout, progress, then=None, after_boot=None) -> None:
        self.waits.append(after_boot)
        if after_boot is not None:
            assert after_boot != self.boot_id, "waited for a reboot nobody asked for"
        if then is not None:
            then(ScriptedSession(self, None))

    # -- what the session does ----------------------------------------------------------------
    def answer(self, command: str, check: bool) -> PlannedResult:
        self.commands.append(command)
        if command == f"cat {BOOT_ID_FILE}":
            return PlannedResult(stdout=self.boot_id + "\n")
        if "systemctl reboot" in command:
            self.boot_id = str(uuid.uuid4())
            return PlannedResult()
        for key, left in self.failures.items():
            if key in command and left != 0:
                self.failures[key] = left - 1 if left > 0 else left
                if check:
                    raise RemoteCommandFailed(command, 7, "out of the guest\n", "it broke\n")
                return PlannedResult(exit_code=7, stderr="it broke\n")
        return PlannedResult()


class ScriptedSession:
    def __init__(self, guest: ScriptedGuest, log_path: Path | None) -> None:
        self.guest = guest
        self.log_path = log_path

    def _log(self, line: str) -> None:
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as log:
                log.write(line + "\n")

    def run(self, command, *, check=True, env=None, input=None, timeout=None, hide=False):
        self._log(f"$ {command}")
        try:
            result = self.guest.answer(command, check)
        except RemoteCommandFailed:
            self._log("exit 7")
            raise
        self._log(f"exit {result.exit_code}")
        return result

    def put(self, content, path, mode=0o644) -> None:
        self.guest.commands.append(f"put {path}")

    def upload(self, local_path, path, mode=0o644) -> None:
        self.guest.commands.append(f"upload {path}")

    def exists(self, path) -> bool:
        return False

    def close(self) -> None:
        return None

"""Errors that carry a hint the operator can act on.

Every failure vmlab reports is a VmlabError: what happened (message), what to do
about it (hint) and the process exit code the CLI should use. This module imports
nothing from vmlab so that every layer can raise these errors.
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INFRA = 3
EXIT_LOCKED = 4


class VmlabError(Exception):
    """Base error: a message, an optional hint and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(VmlabError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class ProfileError(VmlabError):
    """A profile could not be found, parsed or validated.

    `problems` holds one line per problem, each naming the file and the key.
    """

    exit_code = EXIT_USAGE

    def __init__(self, message: str, problems: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.problems = problems or []


class InfrastructureError(VmlabError):
    """The hypervisor, the network, SSH or an image is not available."""

    exit_code = EXIT_INFRA


class DriverError(InfrastructureError):
    """A hypervisor call failed."""


class NotFound(VmlabError):
    """A lab, VM, snapshot or stage that was asked for does not exist."""

    exit_code = EXIT_USAGE


class NotOwned(VmlabError):
    """An object exists but carries no vmlab ownership tag: vmlab will not touch it."""

    exit_code = EXIT_FAILED


class SnapshotExists(VmlabError):
    """A snapshot with that name already exists on the VM."""


class SnapshotFailed(VmlabError):
    """The hypervisor could not take a snapshot; nothing that should follow it has run."""


class WaitTimeout(InfrastructureError):
    """A wait ran past its deadline; the message says what was waited for."""


class StateError(VmlabError):
    """The lab's state file is missing, corrupt or of an unknown schema."""


class LabLocked(VmlabError):
    """Another vmlab process holds the lab's lock."""

    exit_code = EXIT_LOCKED


class RemoteCommandFailed(VmlabError):
    """A command in the guest exited non-zero.

    Carries the command (secrets redacted), the exit code and the tail of both streams.
    """

    def __init__(self, command: str, exit_code: int, stdout_tail: str,
                 stderr_tail: str, hint: str | None = None) -> None:
        self.command = command
        self.returncode = exit_code
        self.stdout_tail = stdout_tail
        self.stderr_tail = stderr_tail
        details = [f"command exited with status {exit_code}: {command}"]
        if stdout_tail.strip():
            details.append("stdout (tail):\n" + _indent(stdout_tail))
        if stderr_tail.strip():
            details.append("stderr (tail):\n" + _indent(stderr_tail))
        super().__init__("\n".join(details), hint)


class StageFailed(VmlabError):
    """A stage's install or verify step failed."""

    def __init__(self, stage: str, message: str, hint: str | None = None,
                 log_path: str | None = None,
                 cause: RemoteCommandFailed | None = None, lab: str | None = None) -> None:
        super().__init__(f"stage {stage!r} failed: {message}", hint)
        self.stage = stage
        self.lab = lab
        self.log_path = log_path
        self.cause = cause


def _indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


class KickstartError(VmlabError):
    """A kickstart or preseed (an installer's answer file) did not render or does not validate."""

    exit_code = EXIT_USAGE

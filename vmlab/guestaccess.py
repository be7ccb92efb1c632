"""How orchestration reaches a guest: open a command session, and wait until it is ready.

`Lab` takes one of these instead of importing the SSH code itself, so the rules of create,
provision, rollback, resume and rebuild run against any guest: the real one over SSH
(`SshGuestAccess`, the default), or a scripted one in the fast tests. A session is what
stages use (``run``, ``put``, ``upload``, ``exists``, ``close``: vmlab.remote.Session).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Protocol

from vmlab.progress import CommandWatcher
from vmlab.sshtarget import Target

if TYPE_CHECKING:
    from vmlab.remote import Session


class GuestAccess(Protocol):
    def open(self, target: Target, *, log_path: Path | None, secrets: Iterable[str],
             command_timeout: float, on_command: CommandWatcher | None) -> "Session":
        """A command session on the guest; the caller closes it."""
        ...

    def wait_ready(self, target: Target, *, timeout: float, progress: Callable[[str], None],
                   then: Callable[["Session"], None] | None = None,
                   after_boot: str | None = None) -> None:
        """Return once the guest answers with its services settled (from a boot other than
        ``after_boot``, when given: the boot id read before a reboot); ``then`` runs in a
        session once it does. Raises WaitTimeout after ``timeout`` seconds."""
        ...


class SshGuestAccess:
    """The real guest, over SSH (Fabric: vmlab.remote, imported only when used)."""

    def open(self, target: Target, *, log_path: Path | None, secrets: Iterable[str],
             command_timeout: float, on_command: CommandWatcher | None) -> "Session":
        from vmlab.remote import open_session

        return open_session(target, log_path=log_path, secrets=secrets,
                            command_timeout=command_timeout, on_command=on_command)

    def wait_ready(self, target: Target, *, timeout: float, progress: Callable[[str], None],
                   then: Callable[["Session"], None] | None = None,
                   after_boot: str | None = None) -> None:
        from vmlab.remote import wait_for_ssh

        wait_for_ssh(target, timeout=timeout, progress=progress, then=then,
                     after_boot=after_boot)


_default: GuestAccess = SshGuestAccess()


def default() -> GuestAccess:
    """The access commands use when none is passed (SSH, unless `using` says otherwise)."""
    return _default


@contextlib.contextmanager
def using(access: GuestAccess) -> Iterator[GuestAccess]:
    """Make ``access`` the default for the commands run inside (the CLI's tests drive
    whole commands against a scripted guest this way)."""
    global _default
    previous, _default = _default, access
    try:
        yield access
    finally:
        _default = previous

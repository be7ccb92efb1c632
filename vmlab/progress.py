"""How the library tells the operator what it is doing, without printing itself.

Library code calls ``progress.step("...")`` for a finished step and
``with progress.waiting("booting") as update:`` around a long wait; ``update("detail")``
says how it goes, and ``update.command`` handed to an SSH session (``on_command``) shows
which guest command runs now and for how long. The CLI decides how it looks (a spinner on
a terminal, timestamped lines otherwise).
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

log = logging.getLogger("vmlab")


@dataclass(frozen=True)
class CommandEvent:
    """A guest command that has just started, is still running (sent about every second),
    or has finished (then ``exit_code`` is set). ``command`` is as the stage log shows it:
    secrets redacted."""

    command: str
    state: Literal["started", "running", "finished"]
    elapsed: float = 0.0
    exit_code: int | None = None


CommandWatcher = Callable[[CommandEvent], None]


def _ignore(_: object) -> None:
    return None


class Waiting:
    """What ``Progress.waiting`` yields: call it with a detail ("attempt 3: no answer"); pass
    ``command`` to an SSH session to show the guest command it runs now."""

    def __init__(self, message: str, on_detail: Callable[[str], None] = _ignore,
                 on_command: CommandWatcher = _ignore) -> None:
        self.message = message
        self._on_detail = on_detail
        self._on_command = on_command

    def __call__(self, detail: str) -> None:
        self._on_detail(detail)

    def command(self, event: CommandEvent) -> None:
        self._on_command(event)


class Progress:
    """Logs only; the CLI subclasses it to show progress on screen."""

    def step(self, message: str) -> None:
        log.info(message)

    def warn(self, message: str) -> None:
        log.warning(message)

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Waiting]:
        """The stage log already holds every command, so commands are not logged again."""
        log.info("%s ...", message)
        yield Waiting(message, lambda detail: log.debug("%s: %s", message, detail))
        log.info("%s: done", message)


def format_duration(seconds: float) -> str:
    """45s, 2m30s, 1h02m05s."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


QUIET = Progress()

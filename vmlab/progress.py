"""How the library tells the operator what it is doing, without printing itself.

Library code calls ``progress.step("...")`` for a finished step and
``with progress.waiting("booting") as update:`` around a long wait; the CLI decides how it
looks (a spinner on a terminal, timestamped lines otherwise).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Iterator

log = logging.getLogger("vmlab")


class Progress:
    """Logs only; the CLI subclasses it to show progress on screen."""

    def step(self, message: str) -> None:
        log.info(message)

    def warn(self, message: str) -> None:
        log.warning(message)

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Callable[[str], None]]:
        log.info("%s ...", message)
        yield lambda detail: log.debug("%s: %s", message, detail)
        log.info("%s: done", message)


QUIET = Progress()

"""How progress looks on screen: a spinner on a terminal, timestamped lines otherwise."""
from __future__ import annotations

import contextlib
import time
from typing import Iterator, TextIO

import click

from vmlab.progress import CommandEvent, Progress, Waiting, format_duration


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


class CliProgress(Progress):
    """A spinner on a terminal; timestamped plain lines (for logs and CI) otherwise.

    Around a stage, the guest command running now (as the stage log shows it: secrets
    redacted) and how long it has run: ticking on the spinner line; otherwise a line as
    each command starts, a "still running" line every ``still_every`` seconds while a long
    one runs, and a "finished" line when such a long one ends.
    """

    #: Longest command text on a plain line; the stage log has every command in full.
    LINE_WIDTH = 160

    def __init__(self, stream: TextIO | None = None, *, still_every: float = 30.0) -> None:
        from rich.console import Console

        self.stream = stream  # None: stderr
        self.console = Console(file=stream, stderr=stream is None)
        self.tty = self.console.is_terminal
        self.still_every = still_every

    def _line(self, text: str) -> None:
        click.echo(f"[{_stamp()}] {text}", file=self.stream, err=True)

    def step(self, message: str) -> None:
        super().step(message)
        if self.tty:
            self.console.print(f"[green]✓[/] {message}", highlight=False)
        else:
            self._line(message)

    def warn(self, message: str) -> None:
        super().warn(message)
        self._line(f"warning: {message}")

    @staticmethod
    def one_line(command: str, width: int) -> str:
        """A command's first line, cut to ``width`` characters; "…" marks what was left out."""
        lines = command.strip().splitlines() or [""]
        text = lines[0]
        if len(text) > width or len(lines) > 1:
            text = text[:max(width - 1, 1)].rstrip() + "…"
        return text

    @classmethod
    def status_text(cls, message: str, waited: float, event: CommandEvent | None,
                    width: int) -> str:
        """The spinner line: the wait, how long it has lasted, and the command running now
        with its own elapsed time, cut to fit ``width`` columns."""
        head = f"{message} ({format_duration(waited)})"
        if event is None or event.state == "finished":
            return head
        tail = f" ({format_duration(event.elapsed)})"
        room = width - len(head) - len(tail) - 6  # ": ", the spinner and a margin
        return f"{head}: {cls.one_line(event.command, max(room, 20))}{tail}"

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Waiting]:
        started = time.monotonic()
        with super().waiting(message) as logged:
            if self.tty:
                with self.console.status(message) as status:
                    def detail(text: str) -> None:
                        logged(text)
                        status.update(f"{message}: {text} "
                                      f"({format_duration(time.monotonic() - started)})")

                    def command(event: CommandEvent) -> None:
                        status.update(self.status_text(message, time.monotonic() - started,
                                                       event, self.console.width))
                    yield Waiting(message, detail, command)
            else:
                self._line(f"{message} ...")
                last_detail = [time.monotonic()]
                last_still = [0.0]

                def detail(text: str) -> None:
                    logged(text)
                    if time.monotonic() - last_detail[0] >= 10:
                        last_detail[0] = time.monotonic()
                        self._line(f"{message}: {text}")

                def command(event: CommandEvent) -> None:
                    shown = self.one_line(event.command, self.LINE_WIDTH)
                    if event.state == "started":
                        last_still[0] = 0.0
                        self._line(f"{message}: {shown}")
                    elif event.state == "running":
                        if event.elapsed - last_still[0] >= self.still_every:
                            last_still[0] = event.elapsed
                            self._line(f"{message}: still running: {shown} "
                                       f"({format_duration(event.elapsed)})")
                    elif event.elapsed >= self.still_every:
                        self._line(f"{message}: finished: {shown} (exit {event.exit_code}, "
                                   f"{format_duration(event.elapsed)})")
                yield Waiting(message, detail, command)
        if not self.tty:
            self._line(f"{message}: done in {format_duration(time.monotonic() - started)}")

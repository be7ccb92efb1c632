"""The command group, its shared options and how progress looks on screen."""
from __future__ import annotations

import contextlib
import json
import time
from typing import Any, Callable, Iterator, TextIO

import click

from vmlab import __version__
from vmlab.progress import CommandEvent, Progress, Waiting, format_duration


def _lab_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Refuse a lab name outside the grammar as the command line is read, before any file or
    hypervisor is touched (vmlab.paths checks again, for every path built from a name)."""
    from vmlab.names import check_lab_name

    return None if value is None else check_lab_name(value)


def lab_option(help: str, *, required: bool = False) -> Callable[[Any], Any]:
    return click.option("--lab", "lab", metavar="NAME", required=required, help=help,
                        callback=_lab_name)


#: --lab of the commands on an existing lab.
LAB_OPTION = lab_option("The lab to act on (default: the only lab there is).")
#: --lab of the commands that make (or plan) a lab from a profile.
NEW_LAB_OPTION = lab_option("The lab's name (default: the profile's name).")


JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


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


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(__version__, prog_name="vmlab")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Build virtual-machine labs on libvirt or vSphere, stage by stage, with a snapshot
    before every stage.

    \b
    Examples:
      vmlab create --profile demo        build the demo lab and provision it
      vmlab status                       what the lab is doing, stage by stage
      vmlab rollback memcached-config    undo a stage (revert to its snapshot)
      vmlab resume                       run the pending stages again
      vmlab destroy                      remove the VM, its disks, snapshots and networks

    Exit codes: 0 ok, 1 an operation or stage failed, 2 usage or profile error,
    3 hypervisor/SSH/image unavailable, 4 the lab is locked by another vmlab.
    --debug may be given anywhere before a `--`.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s: %(message)s")

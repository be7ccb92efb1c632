"""The `vmlab` command line: the only place that prints, prompts or exits.

Heavy modules (the orchestrator, drivers, Fabric) are imported inside the commands, so
`vmlab --help` stays fast and never imports libvirt, pyVmomi or Fabric; a command's own
module (labs, files, nightly, preflight, diff) is imported when that command runs (base.LazyGroup).
"""
from __future__ import annotations

import signal
import sys

import click

from vmlab.cli.base import cli
from vmlab.errors import EXIT_FAILED, EXIT_USAGE, VmlabError


INTERRUPTED = "interrupted; run `vmlab status` to see where the lab is"


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def hoist_debug(args: list[str]) -> list[str]:
    """`--debug` anywhere before a `--` (where words belong to a guest command) moves in front
    of the subcommand, where the group reads it: `vmlab status --debug` works, so the crash
    hint's "run again with --debug" is true wherever the operator puts it."""
    end = args.index("--") if "--" in args else len(args)
    if "--debug" not in args[:end]:
        return args
    return ["--debug"] + [a for a in args[:end] if a != "--debug"] + args[end:]


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning vmlab errors into a message, a hint and an exit code."""
    argv = hoist_debug(list(argv if argv is not None else sys.argv[1:]))
    debug = bool(argv) and argv[0] == "--debug"
    # SIGTERM (a scheduler stopping a job) unwinds like Ctrl-C: a create in progress removes
    # what it made, the state file is left whole and the lab's lock is released.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = cli.main(args=argv, prog_name="vmlab", standalone_mode=False)
    except VmlabError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        for problem in getattr(exc, "problems", []):
            click.echo(f"  - {problem}", err=True)
        if exc.hint:
            click.echo("hint: " + exc.hint.replace("\n", "\n      "), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (and so SIGTERM) into Abort; say what to do next all the same.
        click.echo(INTERRUPTED if isinstance(exc.__cause__, KeyboardInterrupt) else "aborted",
                   err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo(INTERRUPTED, err=True)
        sys.exit(130)
    except Exception:  # a bug: still no bare traceback unless asked for
        if debug:
            raise
        import traceback

        click.echo("error: vmlab failed unexpectedly: "
                   f"{traceback.format_exc().strip().splitlines()[-1]}", err=True)
        click.echo("hint: run again with --debug for the traceback, and report it", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(result if isinstance(result, int) else 0)

"""What the commands that run stages share: reconciling a lab whose stages changed since they
ran (--yes, --no-rollback), and where a failed stage leaves the operator (--on-error)."""
from __future__ import annotations

import sys
from typing import Any, Callable

import click


def interactive() -> bool:
    return sys.stdin.isatty()


def confirm_rollback(lab: str | None, yes: bool) -> Callable[[str, list[str]], bool] | None:
    """How provision agrees to roll back to a changed stage: --yes agrees; a terminal is
    told what will happen and asked; anything else is refused, naming both flags."""
    if yes:
        return None

    def ask(stage: str, again: list[str]) -> bool:
        what = (f"stage {stage} changed since it ran: roll back to its snapshot and run "
                f"{', '.join(again)} again")
        if not interactive():
            from vmlab.errors import UsageError

            where = f" --lab {lab}" if lab else ""
            raise UsageError(f"not rolling back without a terminal to ask on: {what}",
                             hint=f"see the change: vmlab diff{where}\n"
                                  f"roll back and run: vmlab provision{where} --yes\n"
                                  f"only the pending stages: vmlab provision{where} "
                                  "--no-rollback")
        click.echo(what[0].upper() + what[1:] + ".", err=True)
        return click.confirm("Go ahead?", default=True, err=True)

    return ask


def provision(lab: str | None, yes: bool, no_rollback: bool, on_error: str | None) -> None:
    """`vmlab provision` and `vmlab resume`."""
    from vmlab.cli.base import cli_progress
    from vmlab.errors import StageFailed
    from vmlab.reconcile import run_provision

    try:
        result = run_provision(lab, progress=cli_progress(), confirm=confirm_rollback(lab, yes),
                               rollback_changed=not no_rollback)
    except StageFailed as exc:
        after_failure(exc, on_error)
        raise
    if result.noop:
        click.echo("nothing changed; every stage is done")
    else:
        click.echo("every stage is done")


def after_failure(exc: Any, on_error: str | None) -> None:
    """Leave the operator where --on-error says, once a stage failed (``exc``: StageFailed)."""
    if on_error is None and not interactive():
        return  # as before --on-error: the guest is left as it failed
    mode = on_error or "ask"
    lab = getattr(exc, "lab", None)
    if lab is None:
        return
    cause = getattr(exc, "cause", None)
    failure = {"command": cause.command, "exit_code": cause.returncode,
               "stdout_tail": cause.stdout_tail, "stderr_tail": cause.stderr_tail} \
        if cause is not None else {}
    act(lab, exc.stage, failure, mode, exc)


def act(lab: str, stage: str, failure: dict, mode: str, exc: Any = None) -> None:
    """Carry out ``mode`` for a failed ``stage``; ``failure``: its command and output."""
    if mode == "ask":
        click.echo(f"stage {stage} failed. shell: open a shell in the guest where it failed; "
                   "keep: leave the guest as it is; rollback: revert to the stage's snapshot",
                   err=True)
        mode = click.prompt("What now?", type=click.Choice(["shell", "keep", "rollback"]),
                            default="keep", err=True)
    if mode == "shell":
        show_failure(stage, failure)
        click.echo(f"opening a shell in lab {lab} where stage {stage} failed; leave it with "
                   "`exit`", err=True)
        open_shell(lab)
    elif mode == "rollback":
        from vmlab import lab as labs
        from vmlab.cli.base import cli_progress

        labs.rollback(stage, lab, progress=cli_progress())
        if exc is not None:
            exc.hint = (f"log: {exc.log_path}\nrolled back to just before {stage}; fix it, "
                        f"then: vmlab resume --lab {lab}")
    elif mode == "keep" and exc is not None and exc.hint:
        exc.hint += f"\nthe guest is as the stage left it: vmlab ssh --lab {lab}"


def show_failure(stage: str, failure: dict) -> None:
    if not failure.get("command"):
        return
    click.echo(f"failed command in stage {stage} (exit {failure.get('exit_code')}):\n"
               f"  $ {failure['command']}", err=True)
    for key, label in (("stdout_tail", "stdout"), ("stderr_tail", "stderr")):
        text = (failure.get(key) or "").rstrip()
        if text:
            click.echo(f"{label} (tail):\n" + "\n".join("  " + line
                                                       for line in text.splitlines()), err=True)


def open_shell(lab: str) -> int:
    """An interactive `vmlab ssh` in the lab's guest; returns when the operator leaves it."""
    import subprocess

    from vmlab.cli.labs import _ssh_args

    args, _ = _ssh_args(lab)
    return subprocess.call(args)

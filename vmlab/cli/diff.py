"""`vmlab diff`: what changed in a lab's stages since they ran."""
from __future__ import annotations

import click

from vmlab.cli.base import JSON_OPTION, LAB_OPTION, _print_json, cli


@cli.command()
@click.argument("stage", required=False)
@LAB_OPTION
@JSON_OPTION
def diff(stage: str | None, lab: str | None, as_json: bool) -> None:
    """Show, per stage, the plan it ran against the plan as the profile gives it now.

    A unified diff of the commands it runs and the files it writes (secrets masked, as in
    `vmlab plan`). A stage is `changed` when its own plan differs, `stale` when only an
    earlier stage changed (it runs again after it); `vmlab provision` rolls back to the
    first of them.

    \b
    Examples:
      vmlab diff
      vmlab diff memcached-config --lab demo
      vmlab diff --json
    """
    from vmlab.fingerprint import lab_diff

    rows = lab_diff(lab, stage)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        if row["diff"]:
            click.echo(row["diff"], nl=False)
        elif row["status"] == "pending":
            click.echo(f"= {row['stage']}: pending (not run since it was last rolled back "
                       "or added)")
        elif not row["recorded"]:
            click.echo(f"= {row['stage']}: ran before vmlab recorded plans; nothing to compare")
        else:
            words = {"stale": "stale: its own plan is the same, an earlier stage changed"}
            click.echo(f"= {row['stage']}: {words.get(row['drift'], 'unchanged')}")

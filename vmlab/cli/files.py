"""Commands that print what vmlab would do or write: plans, kickstarts, openrc, profiles."""
from __future__ import annotations

from typing import Any

import click

from vmlab.cli.base import JSON_OPTION, LAB_OPTION, NEW_LAB_OPTION, _print_json, cli
from vmlab.errors import ProfileError, UsageError


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile to plan.")
@NEW_LAB_OPTION
@JSON_OPTION
def plan(profile: str, lab: str | None, as_json: bool) -> None:
    """Print every command each stage will run and every file it will write (secrets
    masked), without touching a hypervisor.

    \b
    Example:
      vmlab plan --profile demo
    """
    from vmlab.plan import format_plan, plan as make_plan
    from vmlab.profile import load_profile

    loaded = load_profile(profile)
    name = lab if lab is not None else loaded.profile.name
    stages = make_plan(name, loaded)
    if as_json:
        _print_json(stages)
    else:
        click.echo(format_plan(name, loaded, stages), nl=False)


@cli.group()
def render() -> None:
    """Print files vmlab generates for a lab."""


@render.command("kickstart")
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile whose kickstart to render (it installs by kickstart).")
@NEW_LAB_OPTION
@click.option("--show-secrets", is_flag=True,
              help="Print the root password hash instead of masking it.")
def render_kickstart_command(profile: str, lab: str | None, show_secrets: bool) -> None:
    """Print the lab's kickstart, validated (secrets masked unless --show-secrets).

    With an existing lab its real key and secrets are used; otherwise placeholders.

    \b
    Example:
      vmlab render kickstart --profile newton-aio
    """
    from vmlab.install import kickstart_inputs
    from vmlab.kickstart import mask_secrets, render_kickstart, validate_kickstart
    from vmlab.profile import KickstartInstall, load_profile
    from vmlab.state import LabFiles

    loaded = load_profile(profile)
    install = loaded.profile.install
    if not isinstance(install, KickstartInstall):
        raise UsageError(f"profile {loaded.profile.name} installs by {install.method!r}, "
                         "not by kickstart", hint="try --profile newton-aio")
    name = lab if lab is not None else loaded.profile.name
    files = LabFiles(name)
    if files.exists():
        secrets = files.load_secrets()
        key = files.ssh_key.with_name(files.ssh_key.name + ".pub").read_text().strip()
    else:
        secrets = {"root": "<secret:root>"}
        key = f"ssh-ed25519 <the lab's public key> vmlab-{name}"
    text = render_kickstart(kickstart_inputs(name, loaded, key, secrets,
                                             "http://<install-server>/<token>/done"),
                            template=install.template)
    validate_kickstart(text)
    click.echo(text if show_secrets else mask_secrets(text, secrets.values()), nl=False)


@cli.command()
@click.argument("user", type=click.Choice(["admin", "demo"]))
@LAB_OPTION
def openrc(user: str, lab: str | None) -> None:
    """Print the OpenStack openrc of USER for the lab (it holds the user's password).

    \b
    Example:
      eval "$(vmlab openrc admin)" && openstack token issue
    """
    from vmlab.lab import resolve_lab_name
    from vmlab.openrc import openrc as build_openrc
    from vmlab.state import LabFiles

    click.echo(build_openrc(LabFiles(resolve_lab_name(lab)), user), nl=False)


@cli.command()
@JSON_OPTION
def profiles(as_json: bool) -> None:
    """List the shipped and user profiles.

    \b
    Example:
      vmlab profiles --json
    """
    from vmlab.paths import shipped_profiles_dir
    from vmlab.profile import list_profile_files, load_profile

    rows = []
    for path in list_profile_files():
        row: dict[str, Any] = {"name": path.stem, "path": str(path),
                               "source": "shipped" if path.parent == shipped_profiles_dir()
                               else "user"}
        try:
            loaded = load_profile(str(path))
            row.update(description=loaded.profile.description, valid=True,
                       hypervisor=loaded.profile.hypervisor.kind,
                       stages=loaded.profile.stage_names)
        except ProfileError as exc:
            row.update(valid=False, error=exc.message, problems=exc.problems)
        rows.append(row)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        if row["valid"]:
            click.echo(f"{row['name']:<24} {row['source']:<8} {row['hypervisor']:<8} "
                       f"{row['description']}")
        else:
            click.echo(f"{row['name']:<24} {row['source']:<8} INVALID  {row['error']}")

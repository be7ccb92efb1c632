"""Commands that print what vmlab would do or write: plans, kickstarts, preseeds, openrc,
profiles."""
from __future__ import annotations

from typing import Any, Callable

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


def _installer_file_options(method: str) -> Callable[[Callable], Callable]:
    """The options of `render kickstart` and `render preseed`."""
    def apply(command: Callable) -> Callable:
        command = click.option("--show-secrets", is_flag=True, help="Print the root password "
                               "hash instead of masking it.")(command)
        command = NEW_LAB_OPTION(command)
        return click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
                            help=f"The profile whose {method} to render (it installs by "
                                 f"{method}).")(command)
    return apply


@cli.group()
def render() -> None:
    """Print files vmlab generates for a lab."""


@render.command("kickstart")
@_installer_file_options("kickstart")
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

    loaded = load_profile(profile)
    install = loaded.profile.install
    if not isinstance(install, KickstartInstall):
        raise UsageError(f"profile {loaded.profile.name} installs by {install.method!r}, "
                         "not by kickstart", hint="try --profile newton-aio")
    name = lab if lab is not None else loaded.profile.name
    secrets, key = _lab_key_and_secrets(name)
    text = render_kickstart(kickstart_inputs(name, loaded, key, secrets,
                                             "http://<install-server>/<token>/done"),
                            template=install.template)
    validate_kickstart(text)
    click.echo(text if show_secrets else mask_secrets(text, secrets.values()), nl=False)


@render.command("preseed")
@_installer_file_options("preseed")
def render_preseed_command(profile: str, lab: str | None, show_secrets: bool) -> None:
    """Print the lab's preseed and the late script it runs, checked as before an install
    (secrets masked unless --show-secrets).

    With an existing lab its real key and secrets are used; otherwise placeholders.

    \b
    Example:
      vmlab render preseed --profile zed-aio-debian12-preseed
    """
    from vmlab.install import preseed_inputs
    from vmlab.preseed import mask_secrets, render_preseed, validate_preseed
    from vmlab.profile import PreseedInstall, load_profile

    loaded = load_profile(profile)
    install = loaded.profile.install
    if not isinstance(install, PreseedInstall):
        raise UsageError(f"profile {loaded.profile.name} installs by {install.method!r}, "
                         "not by preseed", hint="try --profile zed-aio-debian12-preseed")
    name = lab if lab is not None else loaded.profile.name
    secrets, key = _lab_key_and_secrets(name)
    server = "http://<install-server>/<token>"
    rendered = render_preseed(preseed_inputs(name, loaded, key, secrets, f"{server}/late.sh",
                                             f"{server}/done"), template=install.template)
    validate_preseed(rendered)
    text = (rendered.preseed + f"\n#### {server}/late.sh, run by late_command\n"
            + rendered.late_script)
    click.echo(text if show_secrets else mask_secrets(text, secrets.values()), nl=False)


def _lab_key_and_secrets(name: str) -> tuple[dict[str, str], str]:
    """An existing lab's secrets and public key; placeholders for a lab not made yet."""
    from vmlab.state import LabFiles

    files = LabFiles(name)
    if files.exists():
        secrets = files.load_secrets()
        key = files.ssh_key.with_name(files.ssh_key.name + ".pub").read_text().strip()
        return secrets, key
    return {"root": "<secret:root>"}, f"ssh-ed25519 <the lab's public key> vmlab-{name}"


@cli.command()
@click.argument("user", type=click.Choice(["admin", "demo"]))
@LAB_OPTION
def openrc(user: str, lab: str | None) -> None:
    """Print the OpenStack openrc of USER for the lab (it holds the user's password).

    \b
    Example:
      eval "$(vmlab openrc admin)" && openstack token issue
    """
    from vmlab.openrc import openrc as build_openrc
    from vmlab.paths import resolve_lab_name
    from vmlab.state import LabFiles

    click.echo(build_openrc(LabFiles(resolve_lab_name(lab)), user), nl=False)


@cli.command()
@JSON_OPTION
def profiles(as_json: bool) -> None:
    """List the shipped and user profiles, with the file each name loads.

    `--profile NAME` loads NAME.yaml from the user's profiles dir when there is one, else the
    shipped one: a user profile overrides a shipped profile of the same name (the shipped
    one is listed as shadowed). A profile that does not load is listed as INVALID with why.

    \b
    Examples:
      vmlab profiles
      vmlab profiles --json
    """
    from vmlab.profile import load_profile
    from vmlab.profilefiles import list_profiles, profile_dirs

    rows = []
    for entry in list_profiles():
        row: dict[str, Any] = {"name": entry.name, "path": str(entry.path),
                               "source": entry.source,
                               "shadowed_by": str(entry.shadowed_by) if entry.shadowed_by
                               else None}
        try:
            loaded = load_profile(str(entry.path))
            row.update(description=loaded.profile.description, valid=True,
                       hypervisor=loaded.profile.hypervisor.kind,
                       stages=loaded.profile.stage_names)
        except ProfileError as exc:
            row.update(valid=False, error=exc.message, problems=exc.problems)
        rows.append(row)
    if as_json:
        _print_json(rows)
        return
    name_width = max([len(row["name"]) for row in rows] + [4]) + 2
    path_width = max([len(row["path"]) for row in rows] + [4]) + 2
    click.echo(f"{'NAME':<{name_width}}{'SOURCE':<9}{'HYPERVISOR':<12}{'FILE':<{path_width}}"
               "DESCRIPTION")
    for row in rows:
        kind = row["hypervisor"] if row["valid"] else "INVALID"
        if row["shadowed_by"]:
            about = f"shadowed: --profile {row['name']} loads {row['shadowed_by']}"
        elif row["valid"]:
            about = row["description"]
        else:
            about = row["error"]
        click.echo(f"{row['name']:<{name_width}}{row['source']:<9}{kind:<12}"
                   f"{row['path']:<{path_width}}{about}".rstrip())
        if not row["valid"] and not row["shadowed_by"]:
            for problem in row["problems"]:
                if problem.split(": ", 1)[-1] not in row["error"]:  # not said already
                    click.echo(f"    - {problem}")
    user_dir, shipped_dir = profile_dirs()
    click.echo(f"\n--profile NAME loads {user_dir}/NAME.yaml if it exists, else "
               f"{shipped_dir}/NAME.yaml.")

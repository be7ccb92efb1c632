"""Commands on one lab: create, provision, roll back, look at, reach and destroy it."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from vmlab.cli.base import (JSON_OPTION, LAB_OPTION, NEW_LAB_OPTION, NO_ROLLBACK_OPTION,
                            ON_ERROR_OPTION, YES_OPTION, _print_json, cli, cli_progress,
                            lab_option)


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="A profile name (see `vmlab profiles`) or a path to a .yaml file.")
@NEW_LAB_OPTION
@click.option("--no-provision", is_flag=True, help="Stop once the OS is up.")
@click.option("--seed-passwords", metavar="VALUE", default=None,
              envvar="VMLAB_SEED_PASSWORDS", show_envvar=True,
              help="Use VALUE for every generated secret (reproduces a manual's fixed "
                   "passwords; not for shared labs). Prefer the environment variable: a "
                   "command line is visible to every user of the host.")
@click.option("--no-preflight", is_flag=True,
              help="Skip the preflight's URL checks (the local checks always run).")
@ON_ERROR_OPTION
def create(profile: str, lab: str | None, no_provision: bool, seed_passwords: str | None,
           no_preflight: bool, on_error: str | None) -> None:
    """Create a lab from a profile: build the VM, boot it, take the first snapshot and run
    every stage.

    The checks of `vmlab preflight` run first; when one fails, create stops before it
    makes anything.

    \b
    Examples:
      vmlab create --profile demo
      vmlab create --profile ./my-lab.yaml --lab test1 --no-provision
      vmlab create --profile demo --on-error shell   a shell in the guest if a stage fails
    """
    from vmlab.cli.stagerun import after_failure
    from vmlab.create import create as create_lab
    from vmlab.errors import StageFailed

    try:
        name = create_lab(profile, lab, provision=not no_provision,
                          seed_passwords=seed_passwords, progress=cli_progress(),
                          check_urls=not no_preflight)
    except StageFailed as exc:
        after_failure(exc, on_error)
        raise
    click.echo(f"lab {name} is ready" + (" (not provisioned)" if no_provision else ""))


@cli.command()
@LAB_OPTION
@YES_OPTION
@NO_ROLLBACK_OPTION
@ON_ERROR_OPTION
def provision(lab: str | None, yes: bool, no_rollback: bool, on_error: str | None) -> None:
    """Run the lab's pending stages, each after its snapshot.

    A stage that ran with another plan than the profile gives now (its script, a template,
    a setting it uses or vmlab itself changed: see `vmlab diff`) makes provision roll back
    to the snapshot before the first such stage and run from there; on a terminal it says so
    and asks first. With nothing changed and every stage done, it does nothing.

    \b
    Examples:
      vmlab provision --lab demo
      vmlab provision --lab demo --yes            roll back to a changed stage, no question
      vmlab provision --lab demo --no-rollback    only the pending stages
      vmlab provision --on-error rollback         a failed stage is undone for a clean retry
    """
    from vmlab.cli.stagerun import provision as run

    run(lab, yes, no_rollback, on_error)


@cli.command()
@LAB_OPTION
@YES_OPTION
@NO_ROLLBACK_OPTION
@ON_ERROR_OPTION
def resume(lab: str | None, yes: bool, no_rollback: bool, on_error: str | None) -> None:
    """Resume provisioning from the first stage not done (same as `provision`).

    \b
    Examples (after a failed stage):
      vmlab rollback keystone && vmlab resume
      vmlab resume --on-error shell
    """
    from vmlab.cli.stagerun import provision as run

    run(lab, yes, no_rollback, on_error)


@cli.command()
@click.argument("stage")
@LAB_OPTION
def rollback(stage: str, lab: str | None) -> None:
    """Undo STAGE: revert to the snapshot taken just before it ran.

    STAGE and every later stage become pending; `vmlab resume` runs them again.

    \b
    Example:
      vmlab rollback keystone
    """
    from vmlab import lab as labs

    labs.rollback(stage, lab, progress=cli_progress())
    click.echo(f"rolled back {stage}; run `vmlab resume` to run it again")


@cli.command()
@LAB_OPTION
@JSON_OPTION
def snapshots(lab: str | None, as_json: bool) -> None:
    """List the lab's snapshots as a tree.

    \b
    Example:
      vmlab snapshots --json
    """
    from vmlab import labinfo

    rows = labinfo.snapshot_rows(lab)
    if as_json:
        _print_json(rows)
        return
    depth: dict[str | None, int] = {None: -1}
    for row in rows:
        depth[row["name"]] = depth.get(row["parent"], -1) + 1
        marker = " (current)" if row["current"] else ""
        click.echo(f"{'  ' * depth[row['name']]}{row['name']}  {row['created']}  "
                   f"{row['state']}{marker}")
    if not rows:
        click.echo("no snapshots")


@cli.command()
@lab_option("The lab to show (default: every lab).")
@JSON_OPTION
def status(lab: str | None, as_json: bool) -> None:
    """Show the lab: VM power state, acceleration, SSH, stages and snapshots.

    Without --lab, shows every lab (--json: a list), each with its own problem if it has
    one: a lab whose state file cannot be used shows the error and the way out; a lab whose
    hypervisor cannot be reached still shows what its state file knows. A lab another vmlab
    is working on shows that command, its pid and since when (--json: `busy`). A stage whose
    plan changed since it ran is marked `changed`, the ones after it `stale` (--json: each
    stage's `drift`); the profile is read for that only when a file the plans come from
    changed since the stages ran (see `vmlab diff`).

    \b
    Exit codes: 0 every lab was shown in full; otherwise the highest of its labs' problems:
    1 a state file cannot be used, 2 no such lab or a setting is unusable (e.g. no vSphere
    password), 3 a hypervisor cannot be reached.

    \b
    Examples:
      vmlab status
      vmlab status --lab demo --json
    """
    from vmlab import labinfo
    from vmlab.paths import list_labs
    from vmlab.state import LabFiles

    if lab is not None and not LabFiles(lab).exists():
        busy = LabFiles(lab).busy()
        if busy is not None:  # e.g. a create that has not written the state yet
            from vmlab.errors import LabLocked
            from vmlab.state import holder_text

            raise LabLocked(f"lab {lab!r} has no state file yet: {holder_text(busy)} is "
                            "working on it", hint="wait for it to finish, then run "
                                                  f"`vmlab status --lab {lab}` again")
        LabFiles(lab).load()  # NotFound (exit 2), saying how to see the labs there are
    results = [labinfo.status(name) for name in ([lab] if lab else list_labs())]
    reports = [result.report for result in results]
    if as_json:
        _print_json(reports[0] if lab else reports)
    elif not reports:
        click.echo("no labs; create one with `vmlab create --profile demo`")
    for report in [] if as_json else reports:
        _print_status(report)
    code = max((result.exit_code for result in results), default=0)
    if code:
        sys.exit(code)


def _print_status(report: dict[str, Any]) -> None:
    from vmlab.state import holder_text

    if "uri" not in report:  # the state file could not be used: nothing else is known
        click.echo(f"lab {report['lab']}")
        _print_error(report)
        return
    click.echo(f"lab {report['lab']} (profile {report['profile']}) on {report['uri']}")
    click.echo(f"  vm: {report['vm']} {report['power']}, acceleration {report['acceleration']}, "
               f"{report['snapshot_mode']} snapshots")
    if report.get("busy"):
        running = [row["name"] for row in report["stages"] if row["status"] == "running"]
        click.echo(f"  busy: {holder_text(report['busy'])} is working on it"
                   + (f", running stage {running[0]}" if running else ""))
    if report.get("ssh"):
        ssh = report["ssh"]
        via = f" via {ssh['via']}" if ssh["via"] else ""
        click.echo(f"  ssh: {ssh['user']}@{ssh['host']}:{ssh['port']}{via}  (vmlab ssh)")
    if report.get("console_log"):
        click.echo(f"  console log: {report['console_log']}")
    if report.get("problem"):
        click.echo(f"  problem: {report['problem']}")
    _print_error(report)
    for row in report["stages"]:
        took = f" {row['duration']:.0f}s" if row.get("duration") is not None else ""
        snap = " [snapshot]" if row.get("snapshot") else ""
        err = f"  ({row['error'].splitlines()[0]})" if row.get("error") else ""
        drift = {"changed": "  changed since it ran",
                 "stale": "  stale: an earlier stage changed"}.get(row.get("drift") or "", "")
        click.echo(f"  {row['status']:<8} {row['name']}{took}{snap}{drift}{err}")
    if report.get("complete"):
        click.echo("  complete [snapshot]")
    if report.get("next"):
        click.echo(f"  next: {report['next']}")


def _print_error(report: dict[str, Any]) -> None:
    """A lab's problem, on standard error, inside that lab's block."""
    if report.get("error"):
        click.echo(f"  error: {report['error']}", err=True)
        if report.get("hint"):
            click.echo("  hint: " + report["hint"].replace("\n", "\n        "), err=True)


@cli.command()
@LAB_OPTION
@click.option("--forget", is_flag=True,
              help="Only drop vmlab's files of the lab, whatever its state file holds; touch "
                   "nothing on the hypervisor (`vmlab gc` finds what is left there).")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (for scripts; without a terminal to ask on, "
                   "destroy refuses unless given --yes).")
def destroy(lab: str | None, forget: bool, yes: bool) -> None:
    """Remove the lab's VM, snapshots, disks and the networks it created, then its files.

    Asks first on a terminal; --yes skips the question, and without a terminal (a script,
    a cron job) --yes is required, as with `vagrant destroy --force` and `kcli delete -y`.

    \b
    Examples:
      vmlab destroy --lab demo
      vmlab destroy --lab demo --yes            in a script
      vmlab destroy --lab demo --forget --yes   a lab whose state file is beyond repair
    """
    from vmlab import lab as labs
    from vmlab.errors import NotFound, UsageError
    from vmlab.state import LabFiles

    name = labs.resolve_lab_name(lab)
    files = LabFiles(name)
    if not forget:
        files.load()  # before asking: a lab that is not there, or whose state is unusable
    elif not files.root.is_dir():
        raise NotFound(f"lab {name!r} does not exist",
                       hint="see `vmlab status` for the labs there are")
    what = (f"forget lab {name} (drop its files; its VM, if any, stays on the hypervisor)"
            if forget else f"destroy lab {name}: its VM, snapshots, disks, networks and files")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"not asking whether to {what}: there is no terminal to ask on",
                             hint=f"add --yes to confirm: vmlab destroy --lab {name}"
                                  f"{' --forget' if forget else ''} --yes")
        if not click.confirm(what[0].upper() + what[1:] + "?", default=False, err=True):
            click.echo(f"lab {name} kept")
            return
    if forget:
        labs.forget(name)
        click.echo(f"lab {name} forgotten")
    else:
        labs.destroy(name, progress=cli_progress())
        click.echo(f"lab {name} destroyed")


@cli.command()
@lab_option("The lab whose state file to rebuild.", required=True)
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile the lab was created from.")
def recover(lab: str, profile: str) -> None:
    """Rebuild a lab's lost or corrupt state file from the hypervisor.

    The VM is found by its ownership tag; stages count as done when the snapshot taken
    after them exists. The old file, if any, is kept as state.json.broken.

    \b
    Example:
      vmlab recover --lab demo --profile demo && vmlab status --lab demo
    """
    from vmlab.recover import recover as run_recover

    state = run_recover(lab, profile)
    done = sum(r.status == "done" for r in state.stages)
    click.echo(f"lab {lab} recovered: {done} of {len(state.stages)} stages done")


def _ssh_args(lab: str | None) -> tuple[list[str], dict[str, Any]]:
    from vmlab.labview import ssh_target

    target = ssh_target(lab)
    args = ["ssh", "-i", str(target.key_file), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={target.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-p", str(target.port)]
    if target.jump:
        args += ["-o", f"ProxyCommand={_proxy_command(target)}"]
    args.append(f"{target.user}@{target.host}")
    return args, {"target": target}


def _proxy_command(target: Any) -> str:
    """ssh through the hypervisor host; unlike -J, this passes the jump host's key."""
    user, host, port, key = target.jump
    return (f"ssh -i {key or target.key_file} -o IdentitiesOnly=yes -o BatchMode=yes "
            f"-o UserKnownHostsFile={target.known_hosts} -o StrictHostKeyChecking=yes "
            f"-p {port} -W %h:%p {user}@{host}")


@cli.command(context_settings={"ignore_unknown_options": True})
@LAB_OPTION
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def ssh(lab: str | None, command: tuple[str, ...]) -> None:
    """Open a shell in the lab's VM, or run COMMAND there.

    \b
    Examples:
      vmlab ssh
      vmlab ssh -- systemctl status memcached
    """
    args, _ = _ssh_args(lab)
    os.execvp("ssh", args + list(command))


@cli.command("ssh-config")
@LAB_OPTION
def ssh_config(lab: str | None) -> None:
    """Print an OpenSSH config block for the lab (append it to ~/.ssh/config).

    \b
    Example:
      vmlab ssh-config >> ~/.ssh/config && ssh vmlab-demo
    """
    from vmlab.paths import resolve_lab_name

    name = resolve_lab_name(lab)
    _, info = _ssh_args(name)
    target = info["target"]
    lines = [f"Host vmlab-{name}", f"  HostName {target.host}", f"  Port {target.port}",
             f"  User {target.user}", f"  IdentityFile {target.key_file}", "  IdentitiesOnly yes",
             f"  UserKnownHostsFile {target.known_hosts}", "  StrictHostKeyChecking yes"]
    if target.jump:
        lines.append(f"  ProxyCommand {_proxy_command(target)}")
    click.echo("\n".join(lines))

"""Commands on one lab: create, provision, roll back, look at, reach and destroy it."""
from __future__ import annotations

import os
from typing import Any

import click

from vmlab.cli.base import JSON_OPTION, LAB_OPTION, CliProgress, _print_json, cli


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="A profile name (see `vmlab profiles`) or a path to a .yaml file.")
@LAB_OPTION
@click.option("--no-provision", is_flag=True, help="Stop once the OS is up.")
@click.option("--seed-passwords", metavar="VALUE", default=None,
              help="Use VALUE for every generated secret (reproduces a manual's fixed "
                   "passwords; not for shared labs).")
@click.option("--no-preflight", is_flag=True,
              help="Skip the preflight's URL checks (the local checks always run).")
def create(profile: str, lab: str | None, no_provision: bool, seed_passwords: str | None,
           no_preflight: bool) -> None:
    """Create a lab from a profile: build the VM, boot it, take the first snapshot and run
    every stage.

    The checks of `vmlab preflight` run first; when one fails, create stops before it
    makes anything.

    \b
    Examples:
      vmlab create --profile demo
      vmlab create --profile ./my-lab.yaml --lab test1 --no-provision
    """
    from vmlab import lab as labs

    name = labs.create(profile, lab, provision=not no_provision, seed_passwords=seed_passwords,
                       progress=CliProgress(), check_urls=not no_preflight)
    click.echo(f"lab {name} is ready" + (" (not provisioned)" if no_provision else ""))


@cli.command()
@LAB_OPTION
def provision(lab: str | None) -> None:
    """Run the lab's pending stages, each after its snapshot.

    \b
    Example:
      vmlab provision --lab demo
    """
    from vmlab import lab as labs

    labs.run_provision(lab, progress=CliProgress())
    click.echo("every stage is done")


@cli.command()
@LAB_OPTION
def resume(lab: str | None) -> None:
    """Resume provisioning from the first stage not done (same as `provision`).

    \b
    Example (after a failed stage):
      vmlab rollback keystone && vmlab resume
    """
    from vmlab import lab as labs

    labs.run_provision(lab, progress=CliProgress())
    click.echo("every stage is done")


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

    labs.rollback(stage, lab, progress=CliProgress())
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
    from vmlab.lab import open_lab

    with open_lab(lab, "snapshots", lock=False) as lab_obj:
        rows = labinfo.snapshot_rows(lab_obj)
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
@LAB_OPTION
@JSON_OPTION
def status(lab: str | None, as_json: bool) -> None:
    """Show the lab: VM power state, acceleration, SSH, stages and snapshots.

    Without --lab, shows every lab (--json: a list).

    \b
    Examples:
      vmlab status
      vmlab status --lab demo --json
    """
    from vmlab.paths import list_labs

    names = [lab] if lab else list_labs()
    reports = []
    for name in names:
        from vmlab import labinfo
        from vmlab.lab import open_lab

        with open_lab(name, "status", lock=False) as lab_obj:
            reports.append(labinfo.status(lab_obj))
    if as_json:
        _print_json(reports[0] if lab else reports)
        return
    if not reports:
        click.echo("no labs; create one with `vmlab create --profile demo`")
    for report in reports:
        _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    click.echo(f"lab {report['lab']} (profile {report['profile']}) on {report['uri']}")
    click.echo(f"  vm: {report['vm']} {report['power']}, acceleration {report['acceleration']}, "
               f"{report['snapshot_mode']} snapshots")
    if report.get("ssh"):
        ssh = report["ssh"]
        via = f" via {ssh['via']}" if ssh["via"] else ""
        click.echo(f"  ssh: {ssh['user']}@{ssh['host']}:{ssh['port']}{via}  (vmlab ssh)")
    if report.get("console_log"):
        click.echo(f"  console log: {report['console_log']}")
    if report.get("problem"):
        click.echo(f"  problem: {report['problem']}")
    for row in report["stages"]:
        took = f" {row['duration']:.0f}s" if row.get("duration") is not None else ""
        snap = " [snapshot]" if row.get("snapshot") else ""
        err = f"  ({row['error'].splitlines()[0]})" if row.get("error") else ""
        click.echo(f"  {row['status']:<8} {row['name']}{took}{snap}{err}")
    if report.get("complete"):
        click.echo("  complete [snapshot]")
    if report.get("next"):
        click.echo(f"  next: {report['next']}")


@cli.command()
@LAB_OPTION
@click.option("--forget", is_flag=True,
              help="Only drop vmlab's files of the lab; touch nothing on the hypervisor.")
def destroy(lab: str | None, forget: bool) -> None:
    """Remove the lab's VM, snapshots, disks and the networks it created, then its files.

    \b
    Example:
      vmlab destroy --lab demo
    """
    from vmlab import lab as labs

    if forget:
        name = labs.resolve_lab_name(lab)
        labs.forget(name)
    else:
        name = labs.destroy(lab, progress=CliProgress())
    click.echo(f"lab {name} destroyed")


@cli.command()
@click.option("--lab", "lab", required=True, metavar="NAME")
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile the lab was created from.")
def recover(lab: str, profile: str) -> None:
    """Rebuild a lab's lost or corrupt state file from the hypervisor.

    The VM is found by its ownership tag; stages count as done when the snapshot taken
    after them exists.

    \b
    Example:
      vmlab recover --lab demo --profile demo && vmlab status --lab demo
    """
    from vmlab.recover import recover as run_recover

    state = run_recover(lab, profile)
    done = sum(r.status == "done" for r in state.stages)
    click.echo(f"lab {lab} recovered: {done} of {len(state.stages)} stages done")


def _ssh_args(lab: str | None) -> tuple[list[str], dict[str, Any]]:
    from vmlab.lab import open_lab

    with open_lab(lab, "ssh", lock=False) as lab_obj:
        target = lab_obj.target(lab_obj.ref())
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
    from vmlab.lab import resolve_lab_name

    name = resolve_lab_name(lab)
    _, info = _ssh_args(name)
    target = info["target"]
    lines = [f"Host vmlab-{name}", f"  HostName {target.host}", f"  Port {target.port}",
             f"  User {target.user}", f"  IdentityFile {target.key_file}", "  IdentitiesOnly yes",
             f"  UserKnownHostsFile {target.known_hosts}", "  StrictHostKeyChecking yes"]
    if target.jump:
        lines.append(f"  ProxyCommand {_proxy_command(target)}")
    click.echo("\n".join(lines))

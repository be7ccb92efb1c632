"""The `vmlab` command line: the only place that prints, prompts or exits.

Heavy modules (the orchestrator, drivers, Fabric) are imported inside the commands, so
`vmlab --help` stays fast and never imports libvirt, pyVmomi or Fabric.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from vmlab import __version__
from vmlab.errors import EXIT_FAILED, EXIT_USAGE, ProfileError, UsageError, VmlabError
from vmlab.progress import Progress

LAB_OPTION = click.option("--lab", "lab", metavar="NAME",
                          help="The lab to act on (default: the only lab there is).")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


class CliProgress(Progress):
    """A spinner on a terminal; timestamped plain lines (for logs and CI) otherwise."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True)
        self.tty = self.console.is_terminal

    def step(self, message: str) -> None:
        super().step(message)
        if self.tty:
            self.console.print(f"[green]✓[/] {message}", highlight=False)
        else:
            click.echo(f"[{_stamp()}] {message}", err=True)

    def warn(self, message: str) -> None:
        super().warn(message)
        click.echo(f"[{_stamp()}] warning: {message}", err=True)

    @contextlib.contextmanager
    def waiting(self, message: str) -> Iterator[Callable[[str], None]]:
        started = time.monotonic()
        with super().waiting(message) as log_update:
            if self.tty:
                with self.console.status(message) as status:
                    def update(detail: str) -> None:
                        log_update(detail)
                        status.update(f"{message}: {detail} ({time.monotonic() - started:.0f}s)")
                    yield update
            else:
                click.echo(f"[{_stamp()}] {message} ...", err=True)
                last = [time.monotonic()]

                def update(detail: str) -> None:
                    log_update(detail)
                    if time.monotonic() - last[0] >= 10:
                        last[0] = time.monotonic()
                        click.echo(f"[{_stamp()}] {message}: {detail}", err=True)
                yield update
        if not self.tty:
            click.echo(f"[{_stamp()}] {message}: done in {time.monotonic() - started:.0f}s",
                       err=True)


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
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(name)s: %(message)s")


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="A profile name (see `vmlab profiles`) or a path to a .yaml file.")
@LAB_OPTION
@click.option("--no-provision", is_flag=True, help="Stop once the OS is up.")
@click.option("--seed-passwords", metavar="VALUE", default=None,
              help="Use VALUE for every generated secret (reproduces a manual's fixed "
                   "passwords; not for shared labs).")
def create(profile: str, lab: str | None, no_provision: bool, seed_passwords: str | None) -> None:
    """Create a lab from a profile: build the VM, boot it, take the first snapshot and run
    every stage.

    \b
    Examples:
      vmlab create --profile demo
      vmlab create --profile ./my-lab.yaml --lab test1 --no-provision
    """
    from vmlab import lab as labs

    name = labs.create(profile, lab, provision=not no_provision, seed_passwords=seed_passwords,
                       progress=CliProgress())
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
    click.echo(f"  vm: {report['vm']} {report['power']}, acceleration {report['acceleration']}")
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


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH",
              help="The profile to plan.")
@LAB_OPTION
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
    name = lab or loaded.profile.name
    stages = make_plan(name, loaded)
    if as_json:
        _print_json(stages)
    else:
        click.echo(format_plan(name, loaded, stages), nl=False)


@cli.command()
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH")
@LAB_OPTION
@click.option("--from", "from_stage", metavar="STAGE",
              help="Revert to STAGE's snapshot and replay from there (the lab must exist).")
@click.option("--from-scratch", is_flag=True, help="Destroy and recreate the lab (default).")
@click.option("--retries", type=click.IntRange(0, 10), default=0, show_default=True,
              help="Roll a failed stage back and run it again up to N times.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write junit.xml, run.json and the logs.")
@click.option("--keep-runs", type=click.IntRange(1), metavar="K",
              help="Keep only the K newest runs of this lab.")
@JSON_OPTION
def rebuild(profile: str, lab: str | None, from_stage: str | None, from_scratch: bool,
            retries: int, report_dir: Path | None, keep_runs: int | None, as_json: bool) -> None:
    """Rebuild a lab for a nightly job and write a report a CI server reads.

    Exit codes: 0 every stage passed, 1 a stage failed, 2 usage or profile error,
    3 hypervisor/SSH/image unavailable, 4 the lab is locked.

    \b
    Examples:
      vmlab rebuild --profile newton-aio --retries 1 --keep-runs 14
      vmlab rebuild --profile newton-aio --from keystone --report-dir out/
    """
    from vmlab.rebuild import rebuild as run_rebuild

    if from_stage and from_scratch:
        raise UsageError("--from and --from-scratch exclude each other")
    report = run_rebuild(profile, lab, from_stage=from_stage, retries=retries,
                         report_dir=report_dir, keep_runs=keep_runs, progress=CliProgress())
    if as_json:
        from dataclasses import asdict

        _print_json(asdict(report))
    else:
        for stage in report.stages:
            click.echo(f"  {stage.status:<8} {stage.name} ({stage.attempts} attempt"
                       f"{'s' if stage.attempts != 1 else ''}, {stage.duration:.0f}s)")
        click.echo(f"rebuild {report.status}; report in {report.run_dir}")
        if report.error:
            click.echo(f"error: {report.error}", err=True)
    sys.exit(report.exit_code)


@cli.command()
@LAB_OPTION
@JSON_OPTION
def runs(lab: str | None, as_json: bool) -> None:
    """List past rebuilds with their status and duration.

    \b
    Example:
      vmlab runs --lab newton-aio --json
    """
    from vmlab.rebuild import list_runs

    rows = list_runs(lab)
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        extra = "".join(f" flaky: {', '.join(row['flaky'])}" if row["flaky"] else "")
        extra += f" failed: {', '.join(row['failed'])}" if row["failed"] else ""
        click.echo(f"{row['lab']:<20} {row['run']:<18} {row['status']:<7} "
                   f"{row['duration'] / 60:5.1f} min  {row['mode']}{extra}")
    if not rows:
        click.echo("no runs")


@cli.command()
@click.option("--uri", default="qemu:///system", show_default=True,
              help="The libvirt hypervisor to clean (ignored with --profile).")
@click.option("--profile", "-p", "profile", metavar="NAME|PATH",
              help="Clean the hypervisor of this profile (e.g. a vSphere one).")
@click.option("--older-than", metavar="AGE", help="Also VMs older than AGE (e.g. 2d, 12h).")
@click.option("--yes", is_flag=True, help="Delete; without it, only show what would go.")
@JSON_OPTION
def gc(uri: str, profile: str | None, older_than: str | None, yes: bool, as_json: bool) -> None:
    """Find vmlab-owned VMs, disks and networks whose lab is gone (or too old).

    A dry run unless --yes. Nothing without vmlab's ownership tag is ever touched.

    \b
    Examples:
      vmlab gc
      vmlab gc --older-than 2d --yes
    """
    from vmlab import drivers
    from vmlab.gc import collect, find_garbage, parse_age

    age = parse_age(older_than) if older_than else None
    if profile:
        from vmlab.lab import open_driver
        from vmlab.profile import load_profile

        driver = open_driver(load_profile(profile))
    else:
        driver = drivers.connect("libvirt", uri=uri)
    with driver:
        rows = find_garbage(driver, age)
        problems = collect(driver, rows) if yes else []
    if as_json:
        _print_json({"deleted": yes, "garbage": rows, "problems": problems})
    else:
        for row in rows:
            click.echo(f"{'deleted' if yes else 'would delete'} {row['vm']} ({row['reason']})"
                       + (f" with {', '.join(row['with'])}" if row["with"] else ""))
        if not rows:
            click.echo("nothing to collect")
        elif not yes:
            click.echo("dry run: add --yes to delete")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        sys.exit(EXIT_FAILED)


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


@cli.group()
def render() -> None:
    """Print files vmlab generates for a lab."""


@render.command("kickstart")
@click.option("--profile", "-p", "profile", required=True, metavar="NAME|PATH")
@LAB_OPTION
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
    name = lab or loaded.profile.name
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
    from vmlab.profile import load_profile
    from vmlab.stages.base import StageEnv
    from vmlab.stages.keystone import keystone_urls
    from vmlab.state import LabFiles

    files = LabFiles(resolve_lab_name(lab))
    state = files.load()
    loaded = load_profile(state.profile_path)
    env = StageEnv(lab=files.lab, profile=loaded.profile, secrets=files.load_secrets())
    urls = keystone_urls(env)
    click.echo(env.render("openstack/openrc.j2", user=user, project=user,
                          password=env.secret(user),
                          auth_url=urls["admin" if user == "admin" else "public"]), nl=False)


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


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning vmlab errors into a message, a hint and an exit code."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    # SIGTERM (a scheduler stopping a job) unwinds like Ctrl-C: a create in progress removes
    # what it made, the state file is left whole and the lab's lock is released.
    signal.signal(signal.SIGTERM, _terminate)
    try:
        result = cli.main(args=argv, prog_name="vmlab", standalone_mode=False)
    except VmlabError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc.message}", err=True)
        for problem in getattr(exc, "problems", []):
            click.echo(f"  - {problem}", err=True)
        if exc.hint:
            click.echo("hint: " + exc.hint.replace("\n", "\n      "), err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted; run `vmlab status` to see where the lab is", err=True)
        sys.exit(130)
    except Exception:  # a bug: still no bare traceback unless asked for
        if debug:
            raise
        click.echo("error: vmlab failed unexpectedly: "
                   f"{traceback.format_exc().strip().splitlines()[-1]}", err=True)
        click.echo("hint: run again with --debug for the traceback, and report it", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(result if isinstance(result, int) else 0)

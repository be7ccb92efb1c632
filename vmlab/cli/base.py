"""The command group and its shared options (how progress looks on screen: cli.progress)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import click

from vmlab import __version__

if TYPE_CHECKING:
    from vmlab.cli.progress import CliProgress


def cli_progress() -> CliProgress:
    """Progress on screen, for the commands that show it (loaded by them only)."""
    from vmlab.cli.progress import CliProgress

    return CliProgress()


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

#: The options of the commands that run stages (vmlab.cli.stagerun carries them out).
ON_ERROR_CHOICES = ("ask", "shell", "keep", "rollback")

ON_ERROR_OPTION = click.option(
    "--on-error", "on_error", type=click.Choice(ON_ERROR_CHOICES), default=None,
    help="When a stage fails: `shell` opens `vmlab ssh` at the failure (the failed command "
         "and its output shown first), `keep` leaves the guest as it failed, `rollback` "
         "reverts to the stage's snapshot so the next `resume` starts clean, `ask` offers "
         "them. Default: ask on a terminal, keep otherwise.")

YES_OPTION = click.option(
    "--yes", "-y", is_flag=True,
    help="Roll back to the first stage that changed since it ran without asking (for "
         "scripts; without a terminal, a lab with changed stages needs --yes or "
         "--no-rollback).")

NO_ROLLBACK_OPTION = click.option(
    "--no-rollback", is_flag=True,
    help="Never roll back for a changed stage: run only the pending stages.")


def _print_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))


#: Each command and the module that defines it (vmlab.cli.<module>).
COMMAND_MODULES = {
    **dict.fromkeys(("create", "provision", "resume", "rollback", "snapshots", "status",
                     "destroy", "recover", "ssh", "ssh-config"), "labs"),
    **dict.fromkeys(("plan", "render", "openrc", "profiles"), "files"),
    **dict.fromkeys(("rebuild", "runs", "gc"), "nightly"),
    "preflight": "preflight",
    "diff": "diff",
}


class LazyGroup(click.Group):
    """A group that imports a command's module when that command is asked for, so that
    `vmlab status` does not load the code of every other command. Listing the commands
    (`--help`, ``commands``) loads them all. (click's "lazily loading subcommands" pattern.)
    """

    def __init__(self, *args: Any, modules: dict[str, str], **kwargs: Any) -> None:
        self._commands: dict[str, click.Command] = {}
        self._importing = False
        self.modules = modules
        super().__init__(*args, **kwargs)

    @property  # type: ignore[override]
    def commands(self) -> dict[str, click.Command]:
        if not self._importing:
            for module in sorted(set(self.modules.values())):
                self._import(module)
        return self._commands

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._commands = value

    def _import(self, module: str) -> None:
        """Import vmlab.cli.<module>: its decorators add its commands to this group."""
        import importlib

        self._importing = True
        try:
            importlib.import_module(f"vmlab.cli.{module}")
        finally:
            self._importing = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._commands and cmd_name in self.modules:
            self._import(self.modules[cmd_name])
        return self._commands.get(cmd_name)


@click.group(cls=LazyGroup, modules=COMMAND_MODULES,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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

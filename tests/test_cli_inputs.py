"""What the command line takes in: lab names outside the grammar refused before anything is
touched, --debug anywhere, help text on every option, destroy asking first."""
from __future__ import annotations

import json
import os
import pty
import subprocess
from pathlib import Path

import click
import pytest

from tests.handmade_labs import SHUTOFF, node_file, state_v2, vm_xml
from tests.lab_harness import REPO, VMLAB
from vmlab.cli import cli, hoist_debug

# -- item: lab names -------------------------------------------------------------------------

BAD_NAMES = ["../x", "..", "ABSOLUTE", "a/b", "A", "a b", "-x", "", "a" * 41, "a\n",
             "./x", "x/..", "ab\x00"]

#: every command that takes --lab, with what else it needs to get as far as the lab name
LAB_COMMANDS = {
    "create": ["create", "--profile", "demo"],
    "plan": ["plan", "--profile", "demo"],
    "preflight": ["preflight", "--profile", "demo", "--no-urls"],
    "render kickstart": ["render", "kickstart", "--profile", "newton-aio"],
    "render preseed": ["render", "preseed", "--profile", "zed-aio-debian12-preseed"],
    "diff": ["diff"],
    "openrc": ["openrc", "admin"],
    "provision": ["provision"],
    "resume": ["resume"],
    "rollback": ["rollback", "a"],
    "snapshots": ["snapshots"],
    "status": ["status"],
    "destroy": ["destroy", "--yes"],
    "destroy --forget": ["destroy", "--forget", "--yes"],
    "recover": ["recover", "--profile", "demo"],
    "ssh": ["ssh"],
    "ssh-config": ["ssh-config"],
    "rebuild": ["rebuild", "--profile", "demo"],
    "runs": ["runs"],
}


def all_commands(group: click.Group = cli, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from all_commands(command, prefix + (name,))
        else:
            yield " ".join(prefix + (name,)), command


def test_the_table_covers_every_command_that_takes_lab():
    taking_lab = {name for name, command in all_commands()
                  if any(p.name == "lab" for p in command.params)}
    assert taking_lab == {name.split(" --")[0] for name in LAB_COMMANDS}


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` with its content: to prove nothing changed."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def v1_state(lab: str, uri: str) -> dict:
    """A lab as vmlab 1 wrote it: what an older vmlab (and this one) would act on."""
    state = state_v2(lab, uri, {"a": "done"})
    for key in ("hypervisor", "ssh", "snapshots", "platform"):
        del state[key]
    return dict(state, schema_version=1)


@pytest.mark.parametrize("command", sorted(LAB_COMMANDS))
def test_a_lab_name_outside_the_grammar_is_refused_before_anything_is_touched(
        home, vmlab_cli, tmp_path, command):
    uri = node_file(tmp_path / "node.xml", vm_xml("x", ["a"], state=SHUTOFF))
    outside = tmp_path / "outside"
    # Where each bad name would point: a lab there must survive every command.
    planted = {"../x": home.labs / "../x", "..": home.labs / "..", "a/b": home.labs / "a/b",
               "A": home.labs / "A", "ABSOLUTE": outside / "x"}
    for directory in planted.values():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "state.json").write_text(json.dumps(v1_state("x", uri)))
    # The only real lab: what an empty --lab used to fall back to.
    home.lab("only", v1_state("only", uri))
    before = tree(tmp_path)
    for name in BAD_NAMES:
        value = str(outside / "x") if name == "ABSOLUTE" else name
        result = vmlab_cli(*LAB_COMMANDS[command], f"--lab={value}")
        assert result.code == 2, (name, result)
        assert f"error: invalid lab name {value!r}" in result.err, (name, result.err)
        assert "hint: a lab name is 1 to 40 lower-case letters" in result.err
        assert tree(tmp_path) == before, f"{command} --lab {value!r} changed files"


@pytest.mark.parametrize("name", ["a", "demo", "newton-aio", "0", "a" * 40, "9-lives"])
def test_names_inside_the_grammar_are_taken(home, vmlab_cli, name):
    result = vmlab_cli("status", f"--lab={name}")
    assert result.code == 2 and f"lab {name!r} does not exist" in result.err


def test_lab_dir_itself_refuses_a_bad_name(home):
    from vmlab import paths
    from vmlab.errors import UsageError

    for name in BAD_NAMES:
        with pytest.raises(UsageError, match="invalid lab name"):
            paths.lab_dir(name)
        with pytest.raises(UsageError, match="invalid lab name"):
            paths.runs_dir(name)


def test_a_folder_vmlab_could_not_have_made_is_not_listed_as_a_lab(home, vmlab_cli):
    (home.labs / "Not A Lab").mkdir(parents=True)
    (home.labs / "Not A Lab" / "state.json").write_text("{}")
    result = vmlab_cli("status")
    assert result.code == 0 and "no labs" in result.out


# -- item: --debug anywhere ------------------------------------------------------------------------

@pytest.mark.parametrize("args, hoisted", [
    (["status", "--debug"], ["--debug", "status"]),
    (["--debug", "status"], ["--debug", "status"]),
    (["rollback", "--debug", "keystone", "--lab", "x"],
     ["--debug", "rollback", "keystone", "--lab", "x"]),
    (["ssh", "--lab", "x", "--", "ls", "--debug"], ["ssh", "--lab", "x", "--", "ls", "--debug"]),
    (["ssh", "--debug", "--", "cmd", "--debug"], ["--debug", "ssh", "--", "cmd", "--debug"]),
    (["status"], ["status"]),
])
def test_debug_is_taken_anywhere_before_a_double_dash(args, hoisted):
    assert hoist_debug(args) == hoisted


def test_debug_after_the_subcommand_shows_the_traceback(home, vmlab_cli):
    result = vmlab_cli("status", "--lab", "nosuch", "--debug")
    assert result.code == 2
    assert "No such option" not in result.err
    assert "Traceback" in result.err and "error: lab 'nosuch' does not exist" in result.err


def test_the_crash_hint_works_where_the_operator_puts_debug(home, vmlab_cli, monkeypatch):
    def bug(lab=None, *, progress=None, **options):
        raise TypeError("a bug")

    monkeypatch.setattr("vmlab.reconcile.run_provision", bug)
    crash = vmlab_cli("provision", "--lab", "x")
    assert crash.code == 1 and "run again with --debug" in crash.err
    with pytest.raises(TypeError, match="a bug"):  # --debug re-raises: the full traceback
        vmlab_cli("provision", "--lab", "x", "--debug")


# -- item: help text ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, command", list(all_commands()))
def test_every_option_of_every_command_has_help(name, command):
    assert (command.help or "").strip(), f"{name} has no help"
    for param in command.params:
        if isinstance(param, click.Option):
            assert (param.help or "").strip(), f"vmlab {name} {param.opts[0]} has no help"


def test_the_group_options_have_help():
    for param in cli.params:
        assert (param.help or "").strip(), param.opts


@pytest.mark.parametrize("name, says", [
    ("create", "default: the profile's name"), ("plan", "default: the profile's name"),
    ("render kickstart", "default: the profile's name"),
    ("render preseed", "default: the profile's name"),
    ("rebuild", "default: the profile's name"),
    ("runs", "default: every lab's"), ("status", "default: every lab"),
    ("destroy", "default: the only lab there is"), ("rollback", "default: the only lab there is"),
    ("recover", "The lab whose state file to rebuild"),
])
def test_lab_help_says_what_the_default_is_for_that_command(name, says):
    command = dict(all_commands())[name]
    lab = next(p for p in command.params if p.name == "lab")
    assert says in lab.help


def test_readme_lists_the_commands_and_options_the_cli_has():
    readme = (REPO / "README.md").read_text()
    for text in ("vmlab recover --lab NAME --profile P", "vmlab destroy [--forget] [--yes]",
                 "--seed-passwords", "vmlab status [--json]"):
        assert text in readme, text
    for name, _ in all_commands():
        assert f"vmlab {name}" in readme, f"README's table lacks `vmlab {name}`"


# -- item: destroy asks first ----------------------------------------------------------------

def lab_env(home) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO),
            "XDG_STATE_HOME": str(home.root / "state"),
            "XDG_CONFIG_HOME": str(home.root / "config")}


def test_destroy_without_a_terminal_and_without_yes_refuses(home, tmp_path):
    uri = node_file(tmp_path / "node.xml", vm_xml("only", ["a"]))
    lab = home.lab("only", state_v2("only", uri, {"a": "done"}))
    for args in (["destroy"], ["destroy", "--lab", "only"], ["destroy", "--forget"]):
        result = subprocess.run(VMLAB + args, env=lab_env(home), capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=60)
        assert result.returncode == 2, result
        assert "there is no terminal to ask on" in result.stderr
        assert "--yes" in result.stderr and lab.is_dir()
    yes = subprocess.run(VMLAB + ["destroy", "--yes"], env=lab_env(home), capture_output=True,
                         text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert yes.returncode == 0 and "lab only destroyed" in yes.stdout and not lab.exists()


@pytest.mark.parametrize("answer, kept", [("n", True), ("", True), ("y", False)])
def test_destroy_on_a_terminal_asks_first(home, tmp_path, answer, kept):
    uri = node_file(tmp_path / "node.xml", vm_xml("only", ["a"]))
    lab = home.lab("only", state_v2("only", uri, {"a": "done"}))
    controller, terminal = pty.openpty()
    process = subprocess.Popen(VMLAB + ["destroy"], env=lab_env(home), stdin=terminal,
                               stdout=subprocess.PIPE, stderr=terminal, text=True)
    os.close(terminal)
    prompt = b""
    while b"[y/N]" not in prompt:
        chunk = os.read(controller, 1024)
        assert chunk, prompt
        prompt += chunk
    assert b"Destroy lab only: its VM, snapshots, disks, networks and files?" in prompt
    os.write(controller, answer.encode() + b"\n")
    out, _ = process.communicate(timeout=60)
    os.close(controller)
    assert process.returncode == 0
    assert lab.is_dir() == kept
    assert ("lab only kept" if kept else "lab only destroyed") in out


def test_scripts_that_destroy_pass_yes():
    """make demo/demo-clean, the benchmarks and the end-to-end tests run without a terminal."""
    callers = [REPO / "Makefile", *REPO.glob("bench/*.py"), *REPO.glob("tests/test_e2e*.py"),
               *REPO.glob("contrib/**/*")]
    for path in callers:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if ("vmlab destroy" in line or '"destroy", "--lab"' in line) and "--yes" not in line:
                if "`vmlab destroy`" in line or line.lstrip().startswith("#"):
                    continue  # prose
                pytest.fail(f"{path.relative_to(REPO)}:{number}: destroy without --yes")


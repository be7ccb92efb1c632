"""Commands on existing labs, made by hand (a state file, a VM on libvirt's test driver):
broken state files with a way out, labs that outlive their profile, status over many labs,
busy labs, rollback's stage check, openrc."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.handmade_labs import RUNNING, node_file, state_v2, vm_xml, write_profile
from tests.lab_harness import REPO
from tests.scripted_guest import ScriptedGuest
from vmlab import guestaccess


def named_commands(text: str) -> list[str]:
    """The `vmlab ...` commands a message names (in backticks or on a line of their own)."""
    found = re.findall(r"(?:`|^\s*|: )(vmlab [a-z][^`\n;,)]*)", text, flags=re.M)
    return [command.strip().rstrip(".") for command in found]


def run_named(vmlab_cli, command: str, profile: Path):
    """Run a command a message named, as the operator would (PROFILE: the lab's profile;
    --yes: the operator's answer to destroy's question)."""
    words = command.split()[1:]
    words = [str(profile) if word == "PROFILE" else word for word in words]
    if words[0] == "destroy" and "--yes" not in words:
        words.append("--yes")
    return vmlab_cli(*words)


# -- a state file vmlab cannot use: every message names a command that works ------------------

GARBAGE = {
    "torn JSON": ("{torn", "it is not valid JSON at line 1 column 2"),
    "empty": ("", "it is empty"),
    "not UTF-8": (b"\xff\xfe{}", "it is not UTF-8 text"),
    "a list": ("[]", "it holds a list, not a JSON object of keys"),
    "a string": ('"state"', "it holds a string, not a JSON object of keys"),
    "no version": ("{}", "it has no schema_version key"),
    "string version": ('{"schema_version": "1"}',
                       'its schema_version is "1" (a string), not a whole number'),
    "boolean version": ('{"schema_version": true}',
                        "its schema_version is true (a boolean), not a whole number"),
    "version 0": ('{"schema_version": 0}', "its schema_version 0 is not one vmlab ever wrote"),
    "newer version": ('{"schema_version": 4}', "was written by a newer vmlab (schema version 4); "
                                               "this vmlab reads versions 1 to 3"),
    "missing keys": ('{"schema_version": 2, "lab": "t1"}', "profile: required key is missing"),
    "deep nesting": ("[" * 100_000, "it is not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(GARBAGE))
def test_a_state_file_vmlab_cannot_use_says_what_is_wrong_and_forget_removes_the_lab(
        home, vmlab_cli, tmp_path, case):
    content, says = GARBAGE[case]
    lab = home.lab("t1", content)
    profile = write_profile(tmp_path / "t1.yaml", node_file(tmp_path / "node.xml"))
    outputs = [vmlab_cli(*args, "--lab", "t1") for args in (
        ["status"], ["rollback", "a"], ["destroy", "--yes"], ["snapshots"], ["provision"],
        ["ssh-config"], ["openrc", "admin"])]
    outputs.append(vmlab_cli("create", "--profile", str(profile), "--lab", "t1"))
    for result in outputs:
        assert result.code in (1, 2), result
        assert says in result.err, result.err
        assert "Traceback" not in result.err and "unexpectedly" not in result.err
        assert "vmlab destroy --forget --lab t1" in result.err
    assert "schema version None" not in outputs[0].err
    forget = [c for c in named_commands(outputs[0].err) if "--forget" in c]
    assert forget == ["vmlab destroy --forget --lab t1"]
    result = run_named(vmlab_cli, forget[0], profile)
    assert result.code == 0, result
    assert not lab.exists()


def test_garbage_state_of_a_lab_whose_vm_exists_is_recovered_by_the_named_command(
        home, vmlab_cli, tmp_path):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a", "b"]))
    profile = write_profile(tmp_path / "t1.yaml", uri)
    home.lab("t1", "{torn")
    status = vmlab_cli("status", "--lab", "t1")
    recover = [c for c in named_commands(status.err) if c.startswith("vmlab recover")]
    assert recover == ["vmlab recover --lab t1 --profile PROFILE"]
    result = run_named(vmlab_cli, recover[0], profile)
    assert result.code == 0 and "1 of 2 stages done" in result.out, result
    report = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    assert [(s["name"], s["status"], s["snapshot"]) for s in report["stages"]] == [
        ("a", "done", True), ("b", "pending", True)]
    assert "error" not in report
    assert (home.labs / "t1" / "state.json.broken").read_text() == "{torn"


def test_garbage_state_without_a_vm_recover_names_forget_then_create_gets_past_exists(
        home, vmlab_cli, tmp_path, closed_port):
    uri = node_file(tmp_path / "node.xml")  # no VM at all
    profile = write_profile(tmp_path / "t1.yaml", uri)
    home.lab("t1", "{torn")
    exists = vmlab_cli("create", "--profile", str(profile), "--lab", "t1")
    assert exists.code == 2 and "already exists, and the state file" in exists.err
    assert "is not usable: it is not valid JSON" in exists.err
    recover = vmlab_cli("recover", "--lab", "t1", "--profile", str(profile))
    assert recover.code == 2 and "no VM 'vmlab-t1'" in recover.err, recover
    commands = named_commands(recover.err)
    assert commands[0] == "vmlab destroy --forget --lab t1", commands
    assert run_named(vmlab_cli, commands[0], profile).code == 0
    assert vmlab_cli("status").out.startswith("no labs")
    # create now goes past "already exists" (and fails here only because this hypervisor
    # is not there: the profile points at a closed port)
    assert commands[1].startswith("vmlab create --profile")
    write_profile(profile, f"qemu+tcp://127.0.0.1:{closed_port}/system")
    create = run_named(vmlab_cli, commands[1], profile)
    assert create.code == 3 and "already exists" not in create.err, create


def test_recover_with_lost_ssh_key_names_commands_that_work(home, vmlab_cli, tmp_path):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a"]))
    profile = write_profile(tmp_path / "t1.yaml", uri)
    home.lab("t1", "{torn", key=False)
    result = vmlab_cli("recover", "--lab", "t1", "--profile", str(profile))
    assert result.code == 2 and "lost its SSH key" in result.err
    assert "vmlab destroy --forget --lab t1" in result.err
    assert f"vmlab gc --profile {profile} --yes" in result.err


def test_forget_removes_a_lab_folder_even_without_a_state_file(home, vmlab_cli):
    (home.labs / "t1" / "logs").mkdir(parents=True)
    assert vmlab_cli("destroy", "--forget", "--yes", "--lab", "t1").code == 0
    assert not (home.labs / "t1").exists()
    missing = vmlab_cli("destroy", "--forget", "--yes", "--lab", "t1")
    assert missing.code == 2 and "lab 't1' does not exist" in missing.err


# -- a lab outlives its profile ---------------------------------------------------------------

@pytest.mark.parametrize("profile_now", ["invalid", "moved"])
def test_commands_on_a_lab_work_from_its_state_when_the_profile_broke_or_moved(
        home, vmlab_cli, tmp_path, monkeypatch, profile_now):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a", "b", "complete"], state=RUNNING))
    profile = tmp_path / "t1.yaml"
    state = state_v2("t1", uri, {"a": "done", "b": "done"}, profile_path=str(profile))
    state["ssh"]["user"] = "operator"
    state["profile"] = "t1"
    home.lab("t1", state, secrets={"admin": "s3cret"})
    if profile_now == "invalid":
        profile.write_text("name: t1\nhypervisor: {kind: libvirt, uri: 1}\nvm: {nics: []}\n")
    status = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    assert status["power"] == "running" and "error" not in status
    assert status["ssh"] == {"host": "127.0.0.1", "port": 40022, "user": "operator", "via": None}
    assert vmlab_cli("snapshots", "--lab", "t1").code == 0
    config = vmlab_cli("ssh-config", "--lab", "t1")
    assert config.code == 0 and "User operator" in config.out and "Port 40022" in config.out
    guest = ScriptedGuest()
    with guestaccess.using(guest):
        rollback = vmlab_cli("rollback", "b", "--lab", "t1")
    assert rollback.code == 0, rollback
    assert guest.waits == [None]  # the guest answered before rollback returned
    saved = json.loads((home.labs / "t1" / "state.json").read_text())
    assert [s["status"] for s in saved["stages"]] == ["done", "pending"]
    destroy = vmlab_cli("destroy", "--lab", "t1", "--yes")
    assert destroy.code == 0 and not (home.labs / "t1").exists()


def test_provision_names_the_profile_file_when_it_broke(home, vmlab_cli, tmp_path):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a"]))
    profile = tmp_path / "t1.yaml"
    home.lab("t1", state_v2("t1", uri, {"a": "pending"}, profile_path=str(profile)) |
             {"profile": "t1"})
    profile.write_text("name: t1\ncpus: many\n")
    broke = vmlab_cli("provision", "--lab", "t1")
    assert broke.code == 2
    assert f"lab 't1' runs its stages from the profile {profile}, which is not valid now" \
        in broke.err
    assert "status, snapshots, rollback, ssh and destroy of the lab work without it" in broke.err
    profile.unlink()
    gone = vmlab_cli("provision", "--lab", "t1")
    assert gone.code == 2 and f"from the profile {profile}, which is gone" in gone.err
    assert f"put the profile back at {profile}" in gone.err


def test_provision_warns_about_profile_changes_an_existing_lab_does_not_take(tmp_path):
    from vmlab.labprofile import load_lab_profile
    from vmlab.progress import Progress
    from vmlab.state import LabState

    class Recorded(Progress):
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def warn(self, message: str) -> None:
            self.warnings.append(message)

    profile = write_profile(tmp_path / "t1.yaml", "test:///elsewhere.xml", ssh_user="admin")
    state = LabState.model_validate(state_v2("t1", "test:///x.xml", {"a": "done"},
                                             profile_path=str(profile)))
    progress = Recorded()
    load_lab_profile(state, progress)
    assert progress.warnings == [
        f"{profile}: hypervisor, ssh changed since lab t1 was created; the lab keeps what it "
        "was created with (recreate it to apply them)"]


def test_provision_follows_the_profiles_stage_list_and_says_what_changed(tmp_path):
    from vmlab.labprofile import follow_stage_list, load_lab_profile
    from vmlab.progress import Progress
    from vmlab.state import LabState

    class Recorded(Progress):
        def __init__(self) -> None:
            self.warnings: list[str] = []

        def warn(self, message: str) -> None:
            self.warnings.append(message)

    profile = write_profile(tmp_path / "t1.yaml", "test:///x.xml")
    state = LabState.model_validate(state_v2("t1", "test:///x.xml", {"a": "done", "old": "done"},
                                             profile_path=str(profile)))
    progress = Recorded()
    follow_stage_list(state, ["a", "b"], load_lab_profile(state, progress), progress)
    assert [(r.name, r.status) for r in state.stages] == [("a", "done"), ("b", "pending")]
    assert progress.warnings == [f"{profile} changed the stages of lab t1: added b (pending); "
                                 "removed old"]


def test_a_version_1_lab_keeps_working_and_is_saved_as_version_3(home, vmlab_cli, tmp_path,
                                                                 monkeypatch):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a", "b"], state=RUNNING))
    profile = write_profile(tmp_path / "t1.yaml", uri, ssh_user="admin")
    v1 = {"schema_version": 1, "lab": "t1", "profile": "t1", "profile_path": str(profile),
          "driver": "libvirt", "uri": uri, "vm_name": "vmlab-t1", "vm_uuid": None,
          "acceleration": "tcg", "created": "2026-01-01T00:00:00Z",
          "stages": [{"name": "a", "status": "done", "attempts": 1},
                     {"name": "b", "status": "failed", "attempts": 1, "error": "boom"}]}
    home.lab("t1", v1)
    status = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    assert status["ssh"]["user"] == "admin"  # from the profile, which still names that VM's host
    assert status["next"] == "vmlab rollback b --lab t1 && vmlab resume --lab t1"
    with guestaccess.using(ScriptedGuest()):
        assert vmlab_cli("rollback", "b", "--lab", "t1").code == 0
    saved = json.loads((home.labs / "t1" / "state.json").read_text())
    assert saved["schema_version"] == 3
    assert saved["hypervisor"] == {"kind": "libvirt", "uri": uri, "pool": "vmlab"}
    assert saved["ssh"]["user"] == "admin" and saved["platform"] == "debian12"
    # A version 1 lab whose profile is gone: the recorded URI and the defaults.
    v1["profile_path"] = str(tmp_path / "gone.yaml")
    v1["profile"] = "gone"
    home.lab("t2", dict(v1, lab="t2", vm_name="vmlab-t1"))
    status = json.loads(vmlab_cli("status", "--lab", "t2", "--json").out)
    assert status["power"] == "running" and status["ssh"]["user"] == "root"


# -- status over many labs ------------------------------------------------------------------------

def test_status_shows_every_lab_each_with_its_own_problem(home, vmlab_cli, tmp_path,
                                                          closed_port):
    uri = node_file(tmp_path / "node.xml", vm_xml("good", ["a"]))
    home.lab("good", state_v2("good", uri, {"a": "done", "b": "pending"}))
    home.lab("broken", "[]")
    far = f"qemu+tcp://127.0.0.1:{closed_port}/system"
    home.lab("far", state_v2("far", far, {"x": "done", "y": "failed"}))
    result = vmlab_cli("status")
    assert result.code == 3, result  # the highest: a hypervisor could not be reached
    assert "lab good (profile demo) on test://" in result.out
    assert "next: vmlab provision --lab good" in result.out
    assert "lab broken\n" in result.out
    assert "it holds a list, not a JSON object of keys" in result.err
    assert f"lab far (profile demo) on {far}" in result.out
    assert "done     x" in result.out and "failed   y" in result.out  # what the state knows
    assert f"cannot connect to libvirt at {far}" in result.err
    reports = {r["lab"]: r for r in json.loads(vmlab_cli("status", "--json").out)}
    assert set(reports) == {"good", "broken", "far"}
    assert "error" not in reports["good"] and reports["good"]["power"] == "shutoff"
    assert "not a JSON object" in reports["broken"]["error"]
    assert "vmlab destroy --forget --lab broken" in reports["broken"]["hint"]
    assert reports["far"]["power"] == "unknown"
    assert [s["status"] for s in reports["far"]["stages"]] == ["done", "failed"]
    assert reports["far"]["error"].startswith(f"cannot connect to libvirt at {far}")
    assert vmlab_cli("status", "--json").code == 3
    # Exit codes: the highest among the labs not shown in full.
    vmlab_cli("destroy", "--forget", "--yes", "--lab", "far")
    assert vmlab_cli("status").code == 1
    vmlab_cli("destroy", "--forget", "--yes", "--lab", "broken")
    assert vmlab_cli("status").code == 0


def test_status_help_documents_its_exit_codes(vmlab_cli):
    text = " ".join(vmlab_cli("status", "--help").out.split())
    assert "0 every lab was shown in full" in text and "3 a hypervisor cannot be reached" in text


# -- a lab another vmlab works on ---------------------------------------------------------------

HOLDER = textwrap.dedent("""\
    import time
    from vmlab.state import LabFiles
    with LabFiles("t1").lock("provision"):
        print("locked", flush=True)
        time.sleep(120)
    """)


def test_status_names_the_process_working_on_the_lab(home, vmlab_cli, tmp_path):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1", ["a", "b"]))
    home.lab("t1", state_v2("t1", uri, {"a": "done", "b": "running"}))
    env = {"PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(home.root / "state")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = vmlab_cli("status", "--lab", "t1")
        assert result.code == 0, result
        assert re.search(rf"busy: `vmlab provision` \(pid {holder.pid} on .+, since .+\) is "
                         "working on it, running stage b", result.out), result.out
        assert "running  b" in result.out and "next:" not in result.out
        busy = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)["busy"]
        assert busy["pid"] == holder.pid and busy["command"] == "provision"
        assert busy["host"] == socket.gethostname() and busy["since"]
    finally:
        holder.kill()
        holder.wait()
    # Killed before it could clean up: lock.info is left, but nobody holds the lab.
    assert (home.labs / "t1" / "lock.info").is_file()
    after = json.loads(vmlab_cli("status", "--lab", "t1", "--json").out)
    assert after["busy"] is None
    assert after["next"] == "vmlab rollback b --lab t1 && vmlab resume --lab t1"


def test_status_of_a_lab_being_created_names_the_process(home, vmlab_cli):
    env = {"PYTHONPATH": str(REPO), "XDG_STATE_HOME": str(home.root / "state")}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace('"provision"', '"create"')],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = vmlab_cli("status", "--lab", "t1")
        assert result.code == 4, result
        assert f"lab 't1' has no state file yet: `vmlab create` (pid {holder.pid}" in result.err
    finally:
        holder.kill()
        holder.wait()
    assert vmlab_cli("status", "--lab", "t1").code == 2  # nobody is making it any more


# -- rollback checks the stage first -------------------------------------------------------------

def test_rollback_of_an_unknown_stage_is_refused_before_connecting(home, vmlab_cli,
                                                                   closed_port):
    far = f"qemu+tcp://127.0.0.1:{closed_port}/system"
    home.lab("t1", state_v2("t1", far, {"prep": "done", "keystone": "done"}))
    result = vmlab_cli("rollback", "nosuch", "--lab", "t1")
    assert result.code == 2, result
    assert "lab 't1' has no stage 'nosuch'" in result.err
    assert "stages: prep, keystone" in result.err
    assert "libvirt" not in result.err


def test_destroy_on_an_unreachable_hypervisor_names_forget(home, vmlab_cli, closed_port):
    far = f"qemu+tcp://127.0.0.1:{closed_port}/system"
    home.lab("t1", state_v2("t1", far, {"a": "done"}))
    result = vmlab_cli("destroy", "--yes", "--lab", "t1")
    assert result.code == 3 and f"cannot connect to libvirt at {far}" in result.err
    forget = [c for c in named_commands(result.err) if "--forget" in c]
    assert forget == ["vmlab destroy --forget --lab t1"]
    assert run_named(vmlab_cli, forget[0], Path("unused")).code == 0
    assert not (home.labs / "t1").exists()


# -- openrc ---------------------------------------------------------------------------------------

def test_openrc_of_a_lab_without_openstack_says_so(home, vmlab_cli):
    home.lab("t1", state_v2("t1", "test:///x.xml", {"hosts": "done"}), secrets={})
    result = vmlab_cli("openrc", "admin", "--lab", "t1")
    assert result.code == 2
    assert "lab 't1' has no OpenStack: none of its stages (hosts) is 'keystone'" in result.err
    assert "secret" not in result.err


@pytest.mark.parametrize("platform, admin_url", [
    ("centos7", "http://controller:35357/v3/"), ("debian12", "http://controller:5000/v3/"),
    ("debian13", "http://controller:5000/v3/")])
def test_openrc_comes_from_the_state_and_secrets_without_the_profile(home, vmlab_cli, platform,
                                                                     admin_url):
    state = state_v2("t1", "test:///x.xml", {"prep": "done", "keystone": "done"},
                     profile_path="/gone/newton-aio.yaml", platform=platform)
    home.lab("t1", state, secrets={"admin": "adm1n", "demo": "d3mo"})
    admin = vmlab_cli("openrc", "admin", "--lab", "t1")
    assert admin.code == 0, admin
    assert "export OS_USERNAME=admin" in admin.out and "OS_PASSWORD='adm1n'" in admin.out
    assert f"export OS_AUTH_URL={admin_url}" in admin.out
    demo = vmlab_cli("openrc", "demo", "--lab", "t1")
    assert "export OS_AUTH_URL=http://controller:5000/v3/" in demo.out
    home.lab("t2", dict(state, lab="t2"), secrets={"admin": "x"})
    no_demo = vmlab_cli("openrc", "demo", "--lab", "t2")
    assert no_demo.code == 2 and "has no password for the OpenStack user 'demo'" in no_demo.err


def test_the_cli_does_not_import_openstack_stage_code():
    text = (REPO / "vmlab" / "cli" / "files.py").read_text()
    assert "vmlab.stages" not in text

"""Profiles: finding, extending, validating, and a clear exit-2 error for every broken one."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vmlab.cli import main
from vmlab.errors import ProfileError
from vmlab.profile import load_profile

GOOD = textwrap.dedent("""\
    name: good
    hypervisor: {kind: libvirt, uri: "qemu:///system"}
    install: {method: image}
    vm:
      nics:
        - {role: provider, network: user, subnet: 10.0.2.0/24, address: 10.0.2.15, gateway: 10.0.2.2}
        - {role: management, network: user, subnet: 192.168.70.0/24, address: 192.168.70.2}
    stages: [hosts]
    """)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_shipped_demo_profile_is_valid():
    loaded = load_profile("demo")
    assert loaded.profile.vm.hostname == "controller"
    assert str(loaded.profile.vm.nic("management").address) == "192.168.70.2"
    assert loaded.profile.stage_names == ["hosts", "memcached-install", "memcached-config"]


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    write(tmp_path, "base.yaml", GOOD)
    child = write(tmp_path, "child.yaml", textwrap.dedent("""\
        extends: base
        name: child
        vm: {cpus: 4}
        stages: [memcached-install]
        """))
    profile = load_profile(str(child)).profile
    assert profile.vm.cpus == 4
    assert profile.vm.nic("management") is not None  # kept from the base
    assert profile.stage_names == ["memcached-install"]
    assert profile.extends == "base"


def test_extends_cycle_is_an_error_naming_the_files(tmp_path):
    write(tmp_path, "a.yaml", "extends: b\n")
    b = write(tmp_path, "b.yaml", "extends: a\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(b))
    assert "cycle" in info.value.message
    assert "a.yaml" in info.value.message and "b.yaml" in info.value.message


def test_problem_in_a_base_profile_names_the_base_file(tmp_path):
    write(tmp_path, "base.yaml", GOOD.replace("stages: [hosts]", "stages: [hosts]\nsnapshots: {mode: sometimes}"))
    child = write(tmp_path, "child.yaml", "extends: base\nname: child\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(child))
    assert any("base.yaml: snapshots.mode" in p for p in info.value.problems), info.value.problems


BROKEN = [
    # (what is wrong, how to break GOOD, key path that must be named, words of the fix)
    ("unknown top-level key", lambda t: t + "stagse: [x]\n", "stagse", "unknown key"),
    ("unknown nested key", lambda t: t.replace("install: {method: image}", "install: {method: image, suit: x}"), "install.suit", "unknown key"),
    ("missing hypervisor", lambda t: t.replace('hypervisor: {kind: libvirt, uri: "qemu:///system"}\n', ""), "hypervisor", "missing"),
    ("unknown hypervisor kind", lambda t: t.replace("kind: libvirt", "kind: xen"), "hypervisor", "libvirt"),
    ("cpus not a number", lambda t: t.replace("vm:\n", "vm:\n  cpus: many\n"), "vm.cpus", "integer"),
    ("memory too small", lambda t: t.replace("vm:\n", "vm:\n  memory_mib: 16\n"), "vm.memory_mib", "256"),
    ("bad subnet", lambda t: t.replace("subnet: 192.168.70.0/24", "subnet: 192.168.70.0/33"), "vm.nics[1].subnet", "IPv4"),
    ("address outside subnet", lambda t: t.replace("address: 192.168.70.2", "address: 192.168.71.2"), "vm.nics[1]", "not inside subnet"),
    ("bad network kind", lambda t: t.replace("network: user, subnet: 192", "network: bridge, subnet: 192"), "vm.nics[1].network", "'nat', 'isolated' or 'user'"),
    ("bad MAC", lambda t: t.replace("address: 192.168.70.2}", "address: 192.168.70.2, mac: zz}"), "vm.nics[1].mac", "MAC address"),
    ("two provider NICs", lambda t: t.replace("role: management", "role: provider"), "vm", "exactly one NIC"),
    ("command timeout of zero", lambda t: t + "ssh: {command_timeout_minutes: 0}\n", "ssh.command_timeout_minutes", "greater than or equal to 1"),
    ("bad snapshot mode", lambda t: t + "snapshots: {mode: sometimes}\n", "snapshots.mode", "'offline' or 'live'"),
    ("duplicate stage", lambda t: t.replace("stages: [hosts]", "stages: [hosts, hosts]"), "(top level)", "repeated: hosts"),
    ("bad hostname", lambda t: t.replace("vm:\n", "vm:\n  hostname: Control_Ler\n"), "vm.hostname", "hostname"),
    ("duplicate YAML key", lambda t: t + "name: again\n", "", "given twice"),
    ("YAML syntax", lambda t: t + "vm: [unclosed\n", "", "invalid YAML"),
    ("not a mapping", lambda t: "- a\n- b\n", "(top level)", "mapping"),
    ("script stage without run", lambda t: t.replace("stages: [hosts]", "stages: [{name: x}]"), "stages[0].run", "missing"),
    ("unknown stage name", lambda t: t.replace("stages: [hosts]", "stages: [hostz]"), "stages[0]", "unknown stage"),
]


@pytest.mark.parametrize("what, breaker, key, fix", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_profile_exits_2_naming_file_and_key(tmp_path, capsys, what, breaker, key, fix):
    path = write(tmp_path, "broken.yaml", breaker(GOOD))
    code, out, err = run_cli(["plan", "--profile", str(path)], capsys)
    assert code == 2, err
    assert "Traceback" not in err
    assert str(path) in err
    assert key in err
    assert fix in err
    assert out == ""


def test_every_problem_is_reported_at_once(tmp_path):
    text = GOOD.replace("vm:\n", "vm:\n  cpus: many\n  memory_mib: 1\n") + "colour: red\n"
    with pytest.raises(ProfileError) as info:
        load_profile(str(write(tmp_path, "three.yaml", text)))
    assert len(info.value.problems) == 3


def test_unknown_profile_name_lists_the_known_ones(capsys):
    code, _, err = run_cli(["plan", "--profile", "no-such-profile"], capsys)
    assert code == 2
    assert "no profile named 'no-such-profile'" in err
    assert "demo" in err


def test_user_profiles_are_found_by_name(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "vmlab" / "profiles").mkdir(parents=True)
    write(tmp_path / "vmlab" / "profiles", "mine.yaml", GOOD.replace("name: good", "name: mine"))
    assert load_profile("mine").profile.name == "mine"
    code, out, _ = run_cli(["profiles", "--json"], capsys)
    assert code == 0
    import json

    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["mine"]["source"] == "user" and rows["mine"]["valid"]
    assert rows["demo"]["source"] == "shipped"


def test_extending_with_another_hypervisor_kind_replaces_the_section(tmp_path):
    write(tmp_path, "base.yaml", GOOD)
    child = write(tmp_path, "child.yaml", "extends: base\nname: child\n"
                  "hypervisor: {kind: vsphere, host: vc.example.org, user: admin}\n")
    hypervisor = load_profile(str(child)).profile.hypervisor
    assert hypervisor.kind == "vsphere" and hypervisor.host == "vc.example.org"

"""Which file a profile name or an `extends:` means: one rule for loading and listing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vmlab.errors import ProfileError
from vmlab.paths import shipped_profiles_dir
from vmlab.profile import load_profile

REPO = Path(__file__).resolve().parent.parent
SHIPPED_DEMO = shipped_profiles_dir() / "demo.yaml"

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


def run_vmlab(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.run([sys.executable, "-m", "vmlab", *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def user_profiles(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    directory = tmp_path / "config" / "vmlab" / "profiles"
    directory.mkdir(parents=True)
    return directory


# -- item 9: extends with a relative path ---------------------------------------------

@pytest.mark.parametrize("extends", ["base.yaml", "./base.yaml", "../shared/base.yaml"])
def test_extends_path_is_relative_to_the_extending_file_not_the_working_dir(
        tmp_path, monkeypatch, extends):
    shared = tmp_path / "shared"
    labs = tmp_path / "labs"
    shared.mkdir()
    labs.mkdir()
    base_dir = shared if extends.startswith("../") else labs
    (base_dir / "base.yaml").write_text(GOOD)
    child = labs / "child.yaml"
    child.write_text(f"extends: {extends}\nname: child\nvm: {{cpus: 3}}\n")
    # the working dir has its own base.yaml and ../shared/base.yaml: both the wrong ones
    elsewhere = tmp_path / "elsewhere" / "deeper"
    (tmp_path / "elsewhere" / "shared").mkdir(parents=True)
    elsewhere.mkdir()
    for wrong in (elsewhere / "base.yaml", tmp_path / "elsewhere" / "shared" / "base.yaml"):
        wrong.write_text("this: is the wrong base\n")
    monkeypatch.chdir(elsewhere)
    loaded = load_profile(str(child))
    assert loaded.profile.vm.cpus == 3
    assert loaded.chain == (child.resolve(), (base_dir / "base.yaml").resolve())


def test_extends_a_missing_relative_path_names_where_it_looked(tmp_path, monkeypatch):
    child = tmp_path / "child.yaml"
    child.write_text("extends: sub/base.yaml\nname: child\n")
    monkeypatch.chdir("/")
    with pytest.raises(ProfileError) as info:
        load_profile(str(child))
    assert info.value.message == f"{child}: extends: profile file sub/base.yaml does not exist"


def test_extends_a_bare_name_prefers_the_sibling_file(tmp_path, user_profiles):
    (tmp_path / "demo.yaml").write_text(GOOD.replace("name: good", "name: sibling"))
    child = tmp_path / "child.yaml"
    child.write_text("extends: demo\nname: child\n")
    assert load_profile(str(child)).chain[1] == (tmp_path / "demo.yaml").resolve()


# -- item 10: a user profile overrides a shipped one, for loading and listing ------------

def test_a_user_profile_overrides_the_shipped_one_of_the_same_name(user_profiles):
    mine = user_profiles / "demo.yaml"
    mine.write_text(GOOD.replace("name: good", "name: demo") + "description: mine\n")
    loaded = load_profile("demo")
    assert loaded.path == mine.resolve()
    assert loaded.profile.description == "mine"


def test_a_user_demo_may_extend_the_shipped_demo(user_profiles):
    mine = user_profiles / "demo.yaml"
    mine.write_text("extends: demo\nvm: {memory_mib: 2048}\n")
    loaded = load_profile("demo")
    assert loaded.chain == (mine.resolve(), SHIPPED_DEMO)
    assert loaded.profile.vm.memory_mib == 2048
    assert loaded.profile.description.startswith("Debian 12 controller")


def test_a_directory_in_place_of_a_user_profile_is_named(user_profiles):
    (user_profiles / "demo.yaml").mkdir()
    with pytest.raises(ProfileError) as info:
        load_profile("demo")
    assert info.value.message == (f"profile {user_profiles / 'demo.yaml'} is a directory, "
                                  "not a profile file")


def test_profiles_lists_which_file_a_name_loads_and_marks_the_shadowed_one(tmp_path):
    user_dir = tmp_path / "config" / "vmlab" / "profiles"
    user_dir.mkdir(parents=True)
    (user_dir / "demo.yaml").write_text("extends: demo\ndescription: my demo\n"
                                        "vm: {hostname: userbox}\n")

    listed = run_vmlab(tmp_path, "profiles", "--json")
    assert listed.returncode == 0, listed.stderr
    demos = [row for row in json.loads(listed.stdout) if row["name"] == "demo"]
    assert [(row["source"], row["path"], row["shadowed_by"]) for row in demos] == [
        ("user", str(user_dir / "demo.yaml"), None),
        ("shipped", str(SHIPPED_DEMO), str(user_dir / "demo.yaml")),
    ]

    text = run_vmlab(tmp_path, "profiles")
    assert text.returncode == 0, text.stderr
    lines = [line for line in text.stdout.splitlines() if line.startswith("demo ")]
    assert lines[0].split()[:4] == ["demo", "user", "libvirt", str(user_dir / "demo.yaml")]
    assert lines[0].endswith("my demo")
    assert lines[1].split()[:4] == ["demo", "shipped", "libvirt", str(SHIPPED_DEMO)]
    assert lines[1].endswith(f"shadowed: --profile demo loads {user_dir / 'demo.yaml'}")
    assert text.stdout.rstrip().endswith(
        f"--profile NAME loads {user_dir}/NAME.yaml if it exists, else "
        f"{shipped_profiles_dir()}/NAME.yaml.")

    planned = run_vmlab(tmp_path, "plan", "--profile", "demo")  # the user's: its hostname
    assert planned.returncode == 0, planned.stderr
    assert "192.168.70.2\tuserbox\n" in planned.stdout, planned.stdout[:400]

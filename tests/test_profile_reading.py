"""Reading a profile file: whatever the bytes, exit 2 naming the file, never a crash; YAML
merge keys work; Python tags and alias bombs stay refused."""
from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vmlab.errors import ProfileError
from vmlab.profile import load_profile
from vmlab.profilefiles import MAX_PROFILE_BYTES

REPO = Path(__file__).resolve().parent.parent

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
    """The real CLI in a subprocess, with its config and state dirs under ``home``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CONFIG_HOME": str(home / "config"),
           "XDG_STATE_HOME": str(home / "state"), "XDG_CACHE_HOME": str(home / "cache")}
    return subprocess.run([sys.executable, "-m", "vmlab", *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120)


def deep_brackets(path: Path) -> None:
    path.write_text("name: deep\nvm: " + "[" * 10_000 + "]" * 10_000 + "\n")


CRASHES = [
    # (what, how the file is made, words of the error after the file name)
    ("non-UTF-8 bytes", lambda p: p.write_bytes(GOOD.encode() + b"description: caf\xe9\n"),
     f":9: not UTF-8 text (byte 0xe9 at offset {len(GOOD) + len('description: caf')})"),
    # libyaml stops at its own limit (1,000 levels), PyYAML's parser at vmlab's (64)
    ("10,000 nested brackets", deep_brackets, ": invalid YAML: "),
    ("100 nested brackets", lambda p: p.write_text("name: deep\nvm: " + "[" * 100 + "]" * 100 + "\n"),
     ":2:68: invalid YAML: nested more than 64 levels deep"),
    ("a 5,000-digit integer", lambda p: p.write_text(GOOD.replace("vm:\n", "vm:\n  cpus: " + "9" * 5000 + "\n")),
     ":5:9: invalid YAML: integer of 5000 digits is too large"),
    ("a 5,000-digit hex integer", lambda p: p.write_text(GOOD.replace("vm:\n", "vm:\n  cpus: 0x" + "f" * 5000 + "\n")),
     ":5:9: invalid YAML: integer of 5002 digits is too large"),
    ("a date that does not exist", lambda p: p.write_text(GOOD + "description: 2023-02-30\n"),
     ":9:14: invalid YAML: cannot read this value: day is out of range for month"),
    ("a list as a key", lambda p: p.write_text(GOOD + "? [a, b]\n: 1\n"),
     ":9:3: invalid YAML: a key must be a plain value"),
    ("a profile path that is a directory", lambda p: p.mkdir(),
     " is a directory, not a profile file"),
]


@pytest.mark.parametrize("what, make, words", CRASHES, ids=[c[0] for c in CRASHES])
def test_unreadable_profile_exits_2_naming_the_file(tmp_path, what, make, words):
    path = tmp_path / "broken.yaml"
    make(path)
    result = run_vmlab(tmp_path, "plan", "--profile", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"error: {path}") or first.startswith(f"error: profile {path}"), first
    assert words in first, first
    assert "unexpectedly" not in result.stderr and "Traceback" not in result.stderr


def test_one_broken_user_profile_leaves_the_others_listed(tmp_path):
    profiles = tmp_path / "config" / "vmlab" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "mine.yaml").write_text(GOOD.replace("name: good", "name: mine"))
    (profiles / "latin1.yaml").write_bytes(b"name: latin1\ndescription: caf\xe9\n")
    deep_brackets(profiles / "deep.yaml")
    (profiles / "folder.yaml").mkdir()
    result = run_vmlab(tmp_path, "profiles")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line[:1].strip()}
    assert rows["mine"].split()[1:3] == ["user", "libvirt"]
    assert rows["demo"].split()[1:3] == ["shipped", "libvirt"]
    for name, words in [("latin1", ":2: not UTF-8 text"), ("deep", "invalid YAML"),
                        ("folder", "is a directory")]:
        assert rows[name].split()[1:4] == ["user", "INVALID", str(profiles / f"{name}.yaml")]
        assert words in rows[name], rows[name]

    as_json = run_vmlab(tmp_path, "profiles", "--json")
    assert as_json.returncode == 0, as_json.stderr
    import json

    by_name = {row["name"]: row for row in json.loads(as_json.stdout)}
    assert by_name["mine"]["valid"] and by_name["newton-aio"]["valid"]
    assert not by_name["latin1"]["valid"]
    assert by_name["latin1"]["error"].startswith(f"{profiles / 'latin1.yaml'}:2: not UTF-8")


def test_a_huge_profile_is_refused_unread_naming_the_file(tmp_path, monkeypatch):
    """Refused after reading no more than the cap (a 50 MB profile took 20 s to refuse
    when it was parsed whole): the bytes read are counted, not the time it took."""
    path = tmp_path / "huge.yaml"
    line = "# " + "x" * 98 + "\n"
    path.write_text(GOOD + line * (50 * 1024 * 1024 // len(line)))
    read: list[int] = []
    real_open = Path.open

    def counting_open(self, mode="r", *args, **kwargs):
        handle = real_open(self, mode, *args, **kwargs)
        if self == path:
            real_read = handle.read

            def read_counted(*size):
                data = real_read(*size)
                read.append(len(data))
                return data
            handle.read = read_counted
        return handle

    monkeypatch.setattr(Path, "open", counting_open)
    try:
        with pytest.raises(ProfileError) as info:
            load_profile(str(path))
        assert info.value.message.startswith(f"{path}: is larger than 1024 KiB")
        assert read and sum(read) <= MAX_PROFILE_BYTES + 1
    finally:
        path.unlink()  # pytest keeps the last runs' tmp dirs: not 50 MB of them


def test_a_profile_just_under_the_size_cap_loads(tmp_path):
    path = tmp_path / "big.yaml"
    line = "# " + "x" * 98 + "\n"
    path.write_text(GOOD + line * ((MAX_PROFILE_BYTES - len(GOOD)) // len(line)))
    assert path.stat().st_size <= MAX_PROFILE_BYTES
    started = time.monotonic()
    assert load_profile(str(path)).profile.name == "good"
    assert time.monotonic() - started < 5.0


def test_yaml_merge_keys_are_supported_and_own_keys_override(tmp_path):
    path = tmp_path / "merged.yaml"
    path.write_text(textwrap.dedent("""\
        name: merged
        hypervisor: {kind: libvirt}
        install: {method: image}
        vm:
          nics:
            - &provider {role: provider, network: user, subnet: 10.0.2.0/24, gateway: 10.0.2.2}
            - <<: *provider
              role: management
              subnet: 192.168.70.0/24
              gateway: null
        """))
    nics = load_profile(str(path)).profile.vm.nics
    assert [(n.role, n.network, str(n.subnet), n.gateway) for n in nics] == [
        ("provider", "user", "10.0.2.0/24", ipaddress.IPv4Address("10.0.2.2")),
        ("management", "user", "192.168.70.0/24", None)]


def test_merge_keys_from_a_list_earlier_mapping_wins(tmp_path):
    from vmlab.safeyaml import load

    data = load("a: &a {x: 1, y: 1}\nb: &b {x: 2, z: 2}\nc: {<<: [*a, *b], y: 3}\n")
    assert data["c"] == {"x": 1, "y": 3, "z": 2}


def test_a_key_given_twice_is_still_refused_next_to_a_merge(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(GOOD.replace("install: {method: image}",
                                 "install: &i {method: image}\nx: {<<: *i, a: 1, a: 2}"))
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert info.value.message == f"{path}:4:19: invalid YAML: key 'a' is given twice"


@pytest.mark.parametrize("text, words", [
    ("name: !!python/object/apply:os.system ['echo hi']\n",
     "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system'"),
    ("name: !!python/name:os.system\n", "could not determine a constructor"),
])
def test_python_tags_are_refused(tmp_path, text, words):
    path = tmp_path / "py.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert info.value.message.startswith(f"{path}:1:7: invalid YAML: {words}")


def test_an_alias_bomb_under_a_real_key_is_refused_quickly(tmp_path):
    """Nine levels of nine aliases (387 million strings if expanded) as a list of NTP servers."""
    levels = ["&a [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&{cur} [" + ", ".join([f"*{prev}"] * 9) + "]"
               for prev, cur in zip("abcdefgh", "bcdefghi")]
    path = tmp_path / "bomb.yaml"
    path.write_text(GOOD + "openstack:\n  ntp_servers: [" + ", ".join(levels) + "]\n")
    started = time.monotonic()
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    # a generous bound, not a speed test: expanded, the bomb takes minutes and gigabytes;
    # refused, milliseconds (a 2 s bound could fail on a machine busy with TCG guests)
    assert time.monotonic() - started < 30
    assert f"{path}: openstack.ntp_servers[8]: Input should be a valid string" in \
        info.value.problems


def test_a_merge_chain_that_multiplies_keys_is_refused(tmp_path):
    from vmlab.safeyaml import MAX_MERGED_KEYS

    keys = ", ".join(f"k{i}: {i}" for i in range(1000))
    lines = [f"l0: &l0 {{{keys}}}"]
    lines += [f"l{i}: &l{i} {{<<: *l{i - 1}, n{i}: 1}}" for i in range(1, 30)]
    path = tmp_path / "merges.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ProfileError) as info:
        load_profile(str(path))
    assert f"merge keys (<<) copy more than {MAX_MERGED_KEYS} keys" in info.value.message
    assert info.value.message.startswith(f"{path}:")

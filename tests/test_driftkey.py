"""The drift key (vmlab.driftkey): what changes it, what does not, and which files it
watches for a profile chain."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import vmlab
from tests.handmade_labs import write_profile
from vmlab import driftkey
from vmlab.paths import user_profiles_dir
from vmlab.profile import load_profile


def aged(path: Path, seconds: int = 3600) -> None:
    then = time.time_ns() - seconds * 10**9
    os.utime(path, ns=(then, then))


@pytest.fixture
def package(tmp_path, monkeypatch) -> Path:
    """A stand-in for the installed package: its stages and templates, aged."""
    root = tmp_path / "pkg"
    for name in ("stages/keystone.py", "stages/__pycache__/keystone.cpython-311.pyc",
                 "templates/openstack/keystone.conf.j2"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x\n")
        aged(root / name)
    monkeypatch.setattr(driftkey, "PACKAGE", root)
    return root


def test_vmlab_s_own_stages_templates_and_version_change_the_key(package, tmp_path,
                                                                 monkeypatch) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\n")
    first = driftkey.key([str(profile)])
    assert driftkey.key([str(profile)]) == first  # stat calls only: the same while unchanged
    aged(package / "templates/openstack/keystone.conf.j2", 60)
    touched = driftkey.key([str(profile)])
    assert touched != first
    (package / "templates/openstack/new.j2").write_text("y\n")
    added = driftkey.key([str(profile)])
    assert added != touched
    (package / "templates/openstack/new.j2").unlink()
    assert driftkey.key([str(profile)]) == touched
    monkeypatch.setattr(vmlab, "__version__", "99.0")
    assert driftkey.key([str(profile)]) != touched


def test_compiled_bytecode_does_not_change_the_key(package, tmp_path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\n")
    first = driftkey.key([str(profile)])
    (package / "stages/__pycache__/keystone.cpython-311.pyc").write_text("other\n")
    (package / "stages/__pycache__/demo.cpython-311.pyc").write_text("new\n")
    assert driftkey.key([str(profile)]) == first


def test_a_profile_file_s_mtime_size_or_absence_changes_the_key(package, tmp_path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\n")
    aged(profile)
    first = driftkey.key([str(profile)])
    aged(profile, 60)
    assert driftkey.key([str(profile)]) != first
    profile.unlink()
    gone = driftkey.key([str(profile)])
    profile.write_text("name: p\n")
    assert driftkey.key([str(profile)]) not in (first, gone)


def test_no_key_is_recorded_for_a_file_changed_while_it_was_read(package, tmp_path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\n")
    reading = time.time_ns()
    assert driftkey.settled_key([str(profile)], reading) is None
    aged(profile)
    assert driftkey.settled_key([str(profile)], reading) == driftkey.key([str(profile)])


def test_the_chain_and_the_places_a_base_would_be_found_first_are_watched(home,
                                                                          tmp_path) -> None:
    """`extends: base` is a sibling file first, then a profile of that name: a base.yaml
    put next to the profile later would be loaded instead, so its place is watched."""
    profiles = user_profiles_dir()
    profiles.mkdir(parents=True)
    base = write_profile(profiles / "base.yaml", "test:///default")
    lab_dir = tmp_path / "mine"
    lab_dir.mkdir()
    profile = lab_dir / "t1.yaml"
    profile.write_text("extends: base\nname: t1\n")
    loaded = load_profile(str(profile))
    assert loaded.chain == (profile.resolve(), base.resolve())
    watched = driftkey.watched_files(loaded, str(profile.resolve()), "t1")
    assert watched == [str(profile.resolve()), str(lab_dir / "base.yaml"),
                       str(lab_dir / "base.yml"), str(base.resolve())]
    before = driftkey.key(watched)
    write_profile(lab_dir / "base.yaml", "test:///default")  # now the base it extends
    assert driftkey.key(watched) != before
    assert load_profile(str(profile)).chain[1] == (lab_dir / "base.yaml").resolve()


def test_a_lab_whose_profile_moved_watches_its_old_place_and_the_name_s(home,
                                                                        tmp_path) -> None:
    """A lab's profile gone from its path is loaded by name: the path is watched (the file
    put back is read instead), and so is each place the name is looked up first."""
    profiles = user_profiles_dir()
    profiles.mkdir(parents=True)
    found = write_profile(profiles / "t1.yml", "test:///default")
    gone = str(tmp_path / "old" / "t1.yaml")
    watched = driftkey.watched_files(load_profile("t1"), gone, "t1")
    assert watched == [gone, str(profiles / "t1.yaml"), str(found.resolve())]

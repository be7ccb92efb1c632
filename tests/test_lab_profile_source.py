"""Where an existing lab's profile is read from: one rule (profilefiles.lab_profile_source)
for every reader of it: running its stages (labprofile.load_lab_profile), migrating a
version 1 state file (statemodel.migrate_v1) and the drift key's files
(driftkey.watched_files). The file its state records while it is there, valid or not;
the profile's name only once that file is gone."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.handmade_labs import state_v2, write_profile
from vmlab.driftkey import watched_files
from vmlab.errors import ProfileError
from vmlab.labprofile import load_lab_profile
from vmlab.paths import user_profiles_dir
from vmlab.profilefiles import lab_profile_source
from vmlab.statemodel import LabState, migrate_v1

URI = "test:///default"


def lab_profiles(tmp_path: Path, case: str) -> tuple[Path, Path]:
    """The lab's own profile file (its state records it; pool `from-file`) as ``case`` has
    it, and a profile of the same name in the user's profiles dir (pool `from-name`)."""
    own = write_profile(tmp_path / "labs-profile.yaml", URI)
    own.write_text(own.read_text().replace(f'uri: "{URI}"', f'uri: "{URI}", pool: from-file'))
    if case == "invalid":
        own.write_text(own.read_text() + "no_such_key: 1\n")
    elif case == "gone":
        own.unlink()
    user_profiles_dir().mkdir(parents=True, exist_ok=True)
    named = write_profile(user_profiles_dir() / "t1.yaml", URI)
    named.write_text(named.read_text().replace(f'uri: "{URI}"', f'uri: "{URI}", pool: from-name'))
    return own, named


def state_of(own: Path) -> dict:
    return dict(state_v2("t1", URI, {"a": "done", "b": "pending"}, profile_path=str(own)),
                profile="t1")


def version_1(state: dict) -> dict:
    """The state as vmlab wrote it at schema version 1: no connection settings."""
    return {key: value for key, value in state.items()
            if key not in ("hypervisor", "ssh", "snapshots", "platform")} | {"schema_version": 1}


@pytest.mark.parametrize("case, source, pool", [
    ("there", "own", "from-file"),
    ("invalid", "own", None),  # reported (stages) or the URI's defaults (migration), never the name
    ("gone", "name", "from-name"),
])
def test_every_reader_of_a_labs_profile_takes_it_from_the_same_place(tmp_path, case, source,
                                                                      pool):
    own, named = lab_profiles(tmp_path, case)
    state = state_of(own)
    expected = str(own) if source == "own" else "t1"
    assert lab_profile_source(state["profile_path"], state["profile"]) == \
        (expected, source == "name")

    lab_state = LabState.model_validate(state)
    if pool is None:
        with pytest.raises(ProfileError, match=f"from the profile {own}, which is not valid"):
            load_lab_profile(lab_state)
    else:
        loaded = load_lab_profile(lab_state)
        assert loaded.path == (own if source == "own" else named)
        assert loaded.profile.hypervisor.pool == pool
        watched = watched_files(loaded, str(own), "t1")
        assert (str(named) in watched) == (source == "name")

    migrated = migrate_v1(version_1(state))
    assert migrated["hypervisor"]["pool"] == (pool or "vmlab")

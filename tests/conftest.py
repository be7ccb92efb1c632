"""Shared fixtures. Fixture modules are registered here as plugins."""
import pytest

pytest_plugins = ["tests.lab_harness", "tests.netns_fixtures", "tests.vsphere_fixtures",
                  "tests.handmade_labs"]


@pytest.fixture(autouse=True)
def _no_user_profiles(tmp_path_factory, monkeypatch):
    """A profile name loads the user's own profile first: a `demo.yaml` in the config dir of
    whoever runs the tests must not stand in for the shipped one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))

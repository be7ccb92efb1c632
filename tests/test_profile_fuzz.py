"""Profiles fuzzed with hypothesis: whatever the YAML, a clear error naming the file, never
a traceback."""
from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from vmlab.errors import ProfileError
from vmlab.paths import shipped_profiles_dir
from vmlab.profile import load_profile

KEYS = ["name", "extends", "hypervisor", "install", "vm", "ssh", "stages", "snapshots",
        "platform", "openstack", "secrets", "kind", "uri", "method", "nics", "role",
        "network", "subnet", "address", "cpus", "memory_mib", "mode", "run", "hostname"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6),
                    st.text(max_size=12), st.sampled_from(
                        ["libvirt", "vsphere", "image", "kickstart", "user", "nat", "provider",
                         "management", "192.168.70.0/24", "10.0.2.15", "offline", "demo"]))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.sampled_from(KEYS), children, max_size=5)),
    max_leaves=25)


@seed(20261124)
@settings(max_examples=1000, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=documents)
def test_any_yaml_gives_a_profile_or_a_clear_error(tmp_path, document):
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump(document))
    try:
        load_profile(str(path))
    except ProfileError as exc:
        assert str(path) in exc.message, exc.message
        # every problem line starts with the file it is in: this one, or a shipped profile
        # it extends (`extends: demo` is among the sampled values)
        files = [str(path), *(str(p) for p in shipped_profiles_dir().glob("*.yaml"))]
        for problem in exc.problems:
            assert any(problem.startswith(f"{name}: ") or problem.startswith(f"{name}:")
                       and problem[len(name) + 1:].split(":")[0].isdigit()
                       for name in files), problem

"""`vmlab plan`: the commands and files of every stage, deterministic and free of secrets.

Golden files live in tests/data/plans; regenerate them with VMLAB_REGEN_GOLDEN=1.
"""
from __future__ import annotations

import pytest

from tests.golden import check_golden
from vmlab.plan import RecordingContext, format_plan, plan
from vmlab.profile import load_profile
from vmlab.stages import StageEnv, builtin_stages

@pytest.mark.parametrize("profile", ["demo"])
def test_plan_matches_golden_file(profile):
    loaded = load_profile(profile)
    check_golden(f"plans/{profile}.txt", format_plan(profile, loaded, plan(profile, loaded)))


def test_demo_config_files_use_the_management_address():
    loaded = load_profile("demo")
    env = StageEnv(lab="demo", profile=loaded.profile)
    context = RecordingContext()
    builtin_stages()["memcached-config"].install(context, env)
    written = {step["write"]: step["content"] for step in context.steps if "write" in step}
    options = [line for line in written["/etc/memcached.conf"].splitlines()
               if line.startswith("-l ")]
    assert options == ["-l 127.0.0.1,192.168.70.2"]
    context = RecordingContext()
    builtin_stages()["hosts"].install(context, env)
    hosts = context.steps[0]["content"]
    assert "192.168.70.2\tcontroller" in hosts
    assert "127.0.1.1" not in hosts

"""MariaDB and memcached bind the management address, so systemd starts them only after
network-online.target: a drop-in for each unit, in place (and systemd reloaded) before the
unit is first started, on both platforms."""
from __future__ import annotations

import configparser

import pytest

from vmlab.plan import plan
from vmlab.profile import load_profile
from vmlab.platforms import Svc, distro

SERVICES = {"mariadb": Svc.MARIADB, "memcached": Svc.MEMCACHED}


@pytest.mark.parametrize("profile", ["newton-aio", "zed-aio-debian12", "epoxy-aio-debian13"])
@pytest.mark.parametrize("stage_name", sorted(SERVICES))
def test_the_unit_is_ordered_after_network_online_before_it_first_starts(profile, stage_name):
    loaded = load_profile(profile)
    unit = distro(loaded.profile.platform).service(SERVICES[stage_name])
    stage = next(s for s in plan("t", loaded) if s["stage"] == stage_name)
    steps = stage["install"]
    drop_in = f"/etc/systemd/system/{unit}.service.d/vmlab-network-online.conf"
    written = [i for i, s in enumerate(steps) if s.get("write") == drop_in]
    assert written, f"no drop-in for {unit}"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(steps[written[0]]["content"])
    assert parser["Unit"]["After"].split() == ["network-online.target"]
    assert parser["Unit"]["Wants"].split() == ["network-online.target"]
    runs = [(i, s["run"]) for i, s in enumerate(steps) if "run" in s]
    reload = next(i for i, command in runs if command == "systemctl daemon-reload")
    start = next(i for i, command in runs if f"systemctl restart {unit}" in command)
    assert written[0] < reload < start
    assert any(f"systemctl show -p After {unit}" in s["run"] and "network-online" in s["run"]
               for s in stage["verify"])

"""One stage flow, two platforms: the same stages, with each platform's packages, services
and paths, and nothing of the other platform leaking in."""
from __future__ import annotations

import pytest

from vmlab.plan import plan
from vmlab.profile import load_profile

STAGES = ["prep", "network", "ntp", "openstack-repos", "mariadb", "rabbitmq", "memcached",
          "keystone", "glance"]


def stage_text(profile: str, stage: str) -> str:
    steps = next(s for s in plan("t", load_profile(profile)) if s["stage"] == stage)
    return "\n".join(str(step) for step in steps["install"] + steps["verify"])


def test_both_profiles_run_the_same_stages_in_the_same_order():
    for profile in ("newton-aio", "zed-aio-debian12"):
        assert [s["stage"] for s in plan("t", load_profile(profile))] == STAGES


CENTOS_ONLY = ["yum ", "/etc/sysconfig", "openstack-selinux", "httpd", "chronyd",
               "python2-PyMySQL", "/etc/my.cnf.d"]
DEBIAN_ONLY = ["apt-get", "apache2", "/etc/apt/", "python3-", "/etc/mysql/"]


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_speaks_its_platforms_language(stage):
    centos, debian = stage_text("newton-aio", stage), stage_text("zed-aio-debian12", stage)
    for word in CENTOS_ONLY:
        assert word not in debian, f"{stage}: {word!r} leaks into Debian"
    for word in DEBIAN_ONLY:
        assert word not in centos, f"{stage}: {word!r} leaks into CentOS"


@pytest.mark.parametrize("stage, centos, debian", [
    ("ntp", "systemctl enable chronyd", "systemctl enable chrony"),
    ("mariadb", "/etc/my.cnf.d/openstack.cnf", "/etc/mysql/mariadb.conf.d/99-openstack.cnf"),
    ("memcached", "/etc/sysconfig/memcached", "/etc/memcached.conf"),
    ("keystone", "openstack-keystone httpd mod_wsgi", "keystone apache2 libapache2-mod-wsgi-py3"),
    ("keystone", "http://controller:35357/v3/", "--bootstrap-admin-url http://controller:5000/v3/"),
    ("glance", "openstack-glance-registry", "glance-api"),
    ("prep", "SELINUX=disabled", "apt-get -q -y upgrade"),
])
def test_platform_specific_choices(stage, centos, debian):
    assert centos in stage_text("newton-aio", stage)
    assert debian in stage_text("zed-aio-debian12", stage)

"""newton-aio's yum repositories, run against a model of the guest's /etc/yum.repos.d
(tests/yum_guest.py): the stock repo files stay disabled across upgrades of the packages
that own them, the SIG repositories the Newton release package brings are disabled, and
that package is installed with the Newton repository (whose key it brings) disabled."""
from __future__ import annotations

import pytest

from tests.yum_guest import NEWTON_RELEASE_FILES, YumGuest
from vmlab.plan import plan
from vmlab.profile import load_profile

VAULT = "http://vault.centos.org/"


@pytest.fixture
def stages():
    return {stage["stage"]: stage for stage in plan("t", load_profile("newton-aio"))}


def run_stage(guest: YumGuest, stage: dict) -> None:
    guest.run_steps(stage["install"])
    failed = [command for command, status in guest.run_steps(stage["verify"]) if status]
    assert not failed, f"stage {stage['stage']}: verify failed: {failed}"


def only_vault_repos_enabled(guest: YumGuest) -> None:
    enabled = guest.enabled()
    assert enabled and all(name.startswith("vmlab-") for name in enabled), sorted(enabled)
    assert all(repo["baseurl"].startswith(VAULT) for repo in enabled.values())


def test_prep_keeps_the_stock_repos_disabled_when_the_upgrade_updates_centos_release(
        tmp_path, stages):
    guest = YumGuest(tmp_path)
    run_stage(guest, stages["prep"])  # YumFailed at the first yum after a dead repo
    only_vault_repos_enabled(guest)
    # edited in place, so rpm kept the file and wrote its new version beside it
    assert (guest.repos / "CentOS-Base.repo").is_file()
    assert (guest.repos / "CentOS-Base.repo.rpmnew").is_file()
    # and a repo file the upgrade added is disabled as well
    assert "centos-kernel" in guest.repositories()
    assert "centos-kernel" not in guest.enabled()


def test_a_second_run_of_prep_changes_nothing(tmp_path, stages):
    guest = YumGuest(tmp_path)
    run_stage(guest, stages["prep"])
    before = {p.name: p.read_text() for p in guest.repos.iterdir()}
    run_stage(guest, stages["prep"])
    assert {p.name: p.read_text() for p in guest.repos.iterdir()} == before


def test_openstack_repos_disables_every_sig_repository_the_release_package_brings(
        tmp_path, stages):
    guest = YumGuest(tmp_path)
    run_stage(guest, stages["prep"])
    run_stage(guest, stages["openstack-repos"])
    only_vault_repos_enabled(guest)
    for name in NEWTON_RELEASE_FILES:
        assert (guest.repos / name).is_file(), name  # in place, not moved: rpm keeps it
    assert {"centos-openstack-newton", "centos-ceph-jewel", "centos-qemu-ev"} <= \
        set(guest.repositories())
    assert "vmlab-openstack-newton" in guest.enabled()


def test_the_release_package_is_installed_with_the_newton_repository_disabled(
        tmp_path, stages):
    guest = YumGuest(tmp_path)
    run_stage(guest, stages["prep"])
    run_stage(guest, stages["openstack-repos"])
    assert len(guest.release_installed_with) == 1
    enabled = guest.release_installed_with[0]
    assert "vmlab-openstack-release" in enabled and "vmlab-openstack-newton" not in enabled


def test_the_verify_fails_while_a_stock_repository_names_a_url(tmp_path):
    from vmlab.platforms import distro

    yum = distro("centos7").packaging
    guest = YumGuest(tmp_path)
    assert guest.run(yum.only_vmlab_repos()) != 0  # CentOS-Base.repo as installed
    assert guest.run(yum.disable_stock_repos()) == 0
    assert guest.run(yum.only_vmlab_repos()) == 0
    assert guest.enabled() == {}


def test_only_yum_can_leave_a_repository_out_of_one_install():
    from vmlab.platforms import distro

    assert distro("centos7").packaging.install(["chrony"], disable_repos=("a", "b")) == \
        "yum -y -q --disablerepo=a --disablerepo=b install chrony"
    with pytest.raises(ValueError):
        distro("debian12").packaging.install(["chrony"], disable_repos=("a",))

"""Every distribution x OpenStack release vmlab ships, planned through every built-in
stage: the tables answer every question a stage asks (no missing role, no template named
after a platform that lacks it), and each pair's plan carries its own table's answers."""
from __future__ import annotations

from pathlib import Path

import pytest

from vmlab.errors import ProfileError
from vmlab.plan import plan
from vmlab.platforms import DISTROS, RELEASES, Distro, File, Pkg, Release, Svc, shipped_pairs
from vmlab.profile import load_profile
from vmlab.stages import builtin_stages

REPO = Path(__file__).resolve().parent.parent
#: a shipped profile per install method, which each pair's profile extends
BASE = {"kickstart": REPO / "profiles/newton-aio.yaml",
        "image": REPO / "profiles/zed-aio-debian12.yaml"}
PAIRS = shipped_pairs()


def pair_id(pair: tuple[Distro, Release]) -> str:
    return f"{pair[0].name}-{pair[1].name}"


def write_pair_profile(tmp_path: Path, distro: Distro, release: Release) -> Path:
    install = distro.install_methods[0]
    lines = [f"extends: {BASE[install]}", f"name: matrix-{distro.name}-{release.name}",
             f"platform: {distro.name}", f"openstack: {{release: {release.name}}}",
             "stages: [" + ", ".join(builtin_stages()) + "]"]
    if distro.codename:
        lines.append(f"install: {{method: image, suite: {distro.codename}}}")
    path = tmp_path / f"{distro.name}-{release.name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def planned(tmp_path: Path, distro: Distro, release: Release) -> dict[str, str]:
    stages = plan("m", load_profile(str(write_pair_profile(tmp_path, distro, release))))
    return {s["stage"]: "\n".join(str(step) for step in s["install"] + s["verify"])
            for s in stages}


def test_the_tables_ship_each_distribution_with_a_release():
    assert {d.name for d, _ in PAIRS} == set(DISTROS)
    assert {r.name for _, r in PAIRS} == set(RELEASES)


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_every_stage_plans_for_the_pair(pair, tmp_path):
    distro, release = pair
    text = planned(tmp_path, distro, release)
    assert set(text) == set(builtin_stages())
    for stage, steps in text.items():
        assert steps, f"{stage} plans nothing"
    # The pair's own answers, from its table records.
    assert distro.install(Pkg.KEYSTONE) in text["keystone"]
    assert distro.install(Pkg.GLANCE) in text["glance"]
    assert distro.enable_and_start(Svc.CHRONY) in text["ntp"]
    assert distro.path(File.MARIADB_CNF) in text["mariadb"]
    assert distro.path(File.MEMCACHED_CONF) in text["memcached-config"]
    assert distro.installed(Pkg.MEMCACHED) in text["memcached-install"]
    assert f"--bootstrap-admin-url {release.keystone_urls()['admin']}" in text["keystone"]
    assert f"{release.authtoken_uri_option} = http://controller:5000" in text["glance"]
    assert ("glance-registry.conf" in text["glance"]) == release.glance_registry
    assert ("admin_token_auth" in text["keystone"]) == release.keystone_paste_pipeline
    if distro.codename:
        assert f" {distro.codename}-security main" in text["prep"]


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_nothing_of_another_distribution_leaks_into_the_plan(pair, tmp_path):
    distro, release = pair
    text = "\n".join(planned(tmp_path, distro, release).values())
    for other in DISTROS.values():
        if other.packaging == distro.packaging and other.packages == distro.packages:
            continue  # the same family (Debian's releases share their names)
        for role in (Pkg.KEYSTONE, Pkg.MARIADB, Pkg.OPENSTACK_CLIENT):
            assert other.install(role) not in text, f"{other.name}'s {role.value} leaks in"


@pytest.mark.parametrize("distro", DISTROS.values(), ids=lambda d: d.name)
def test_every_template_a_distribution_names_exists(distro):
    templates = REPO / "vmlab/templates"
    named = [*distro.templates.values(), *distro.preseeds.values()]
    for attribute in ("mirror_template", "sources_template"):
        named += [getattr(distro.packaging, attribute)] if hasattr(distro.packaging,
                                                                    attribute) else []
    for name in named:
        assert (templates / name).is_file(), name
        assert not any(other in name for other in DISTROS), f"{name} is named after a platform"


def test_each_shipped_pair_has_a_shipped_profile():
    shipped = {(p.profile.platform, p.profile.openstack.release)
               for p in (load_profile(str(path)) for path in (REPO / "profiles").glob("*.yaml"))
               if "keystone" in p.profile.stage_names}
    assert {(d.name, r.name) for d, r in PAIRS} <= shipped


def test_a_pair_the_tables_do_not_ship_is_a_profile_error(tmp_path):
    debian = next(d for d in DISTROS.values() if "image" in d.install_methods)
    other = next(r for r in RELEASES.values() if not debian.supports(r.name))
    path = write_pair_profile(tmp_path, debian, other)
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    assert f"OpenStack {other.name} is not packaged for {debian.name}" in str(raised.value.problems)


def test_an_image_suite_of_another_distribution_is_a_profile_error(tmp_path):
    images = [d for d in DISTROS.values() if d.codename]
    if len(images) < 2:
        pytest.skip("one image distribution")
    first, second = images[:2]
    path = write_pair_profile(tmp_path, first, RELEASES[first.releases[0]])
    path.write_text(path.read_text().replace(f"suite: {first.codename}",
                                             f"suite: {second.codename}"))
    with pytest.raises(ProfileError) as raised:
        load_profile(str(path))
    assert f"suite {second.codename!r} builds a {second.name} guest" in str(raised.value.problems)


def test_a_profile_without_release_or_suite_takes_its_platforms(tmp_path):
    base = tmp_path / "base.yaml"  # the image profile with neither given
    base.write_text(BASE["image"].read_text().replace("  release: zed\n", "")
                    .replace("  suite: bookworm\n", ""))
    for distro in (d for d in DISTROS.values() if d.codename):
        path = tmp_path / f"{distro.name}.yaml"
        path.write_text(f"extends: {base}\nname: bare-{distro.name}\nplatform: {distro.name}\n")
        profile = load_profile(str(path)).profile
        assert profile.openstack.release == distro.releases[0]
        assert profile.install.suite == distro.codename


def test_the_package_managers_check_what_is_installed_in_their_own_terms():
    apt, yum = DISTROS["debian12"].packaging, DISTROS["centos7"].packaging
    assert apt.installed(["a", "b"]) == (
        "dpkg-query -W -f='${Status}' a | grep -q 'install ok installed' && "
        "dpkg-query -W -f='${Status}' b | grep -q 'install ok installed'")
    assert yum.installed(["a", "b"]) == "rpm -q a b >/dev/null"
    with pytest.raises(ValueError):
        yum.preseed("openstack/debconf-keystone.j2")


def test_a_role_a_distribution_lacks_is_named_in_the_error():
    with pytest.raises(KeyError, match="CentOS 7 has no service for 'keystone-packaged'"):
        DISTROS["centos7"].service(Svc.KEYSTONE_PACKAGED)


def test_no_stage_or_template_names_a_platform_or_release():
    """What differs is asked of the tables; a name in a stage is a branch on it."""
    names = [*DISTROS, *RELEASES]
    sources = [*(REPO / "vmlab/stages").glob("*.py"), *(REPO / "vmlab/templates").rglob("*.j2")]
    for source in sources:
        text = source.read_text()
        assert ".name ==" not in text and ".name !=" not in text, source
        for name in names:
            for quoted in (f'"{name}"', f"'{name}'", f"-{name}."):
                assert quoted not in text, f"{source.name} names {name}"

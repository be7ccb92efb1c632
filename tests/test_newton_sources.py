"""Where newton-aio gets CentOS and Newton: the shipped ISO checksum is the one CentOS
publishes next to the ISO in the vault, so the URL check (and the download's verification)
accept the real file; the Newton repository is the vault's 7.4.1708 tree, as the docs say."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.mirror import ISO, ISO_BYTES, lay_out, newton_profile, serve
from vmlab.preflight import urls
from vmlab.profile import KickstartInstall, load_profile

PUBLISHED = Path(__file__).parent / "data" / "centos" / "vault-7.9.2009-isos-sha256sum.txt"
DOC = Path(__file__).resolve().parent.parent / "docs" / "newton-aio.md"


def published() -> dict[str, str]:
    return {name: digest for digest, name in
            (line.split() for line in PUBLISHED.read_text().splitlines() if line.strip())}


@pytest.fixture
def home(tmp_path, monkeypatch):
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


def test_the_shipped_iso_is_the_vaults_2009_minimal_with_its_published_sha256():
    install = load_profile("newton-aio").profile.install
    assert isinstance(install, KickstartInstall)
    url = urlsplit(install.iso_url)
    assert (url.netloc, url.path.rsplit("/", 1)[0]) == ("vault.centos.org",
                                                         "/7.9.2009/isos/x86_64")
    name = url.path.rsplit("/", 1)[1]
    assert install.iso_sha256 == published()[name]
    # the model's default (a kickstart install without iso_url/iso_sha256) is the same file
    default = KickstartInstall(method="kickstart")
    assert (default.iso_url, default.iso_sha256) == (install.iso_url, install.iso_sha256)


def test_the_url_check_accepts_the_shipped_sha256_against_the_vaults_list(home):
    shipped = load_profile("newton-aio").profile.install
    with serve(home / "mirror") as mirror:
        lay_out(mirror)
        mirror.put(ISO.rsplit("/", 1)[0] + "/sha256sum.txt", PUBLISHED.read_bytes())
        loaded = load_profile(str(newton_profile(home / "shipped-sum.yaml", mirror,
                                                 "test:///unused",
                                                 iso_sha256=shipped.iso_sha256)))
        results = urls.check_all(urls.planned_fetches("shipped-sum", loaded),
                                 urls.TIMEOUT).results()
    iso = next(r for r in results if r.check.name == "install ISO")
    assert iso.check.status == "ok", iso.check.detail
    assert iso.size == ISO_BYTES and "sha256 as in the mirror's sha256sum.txt" in iso.check.detail


def test_the_newton_repository_is_the_vaults_last_newton_tree_as_documented():
    from vmlab.profile import OpenStack

    shipped = load_profile("newton-aio").profile.openstack.openstack_repo_url
    assert shipped == OpenStack().openstack_repo_url
    assert re.fullmatch(r"http://vault\.centos\.org/7\.4\.1708/cloud/\$basearch/"
                        r"openstack-newton/", shipped)
    section = DOC.read_text().split("## Which Newton tree", 1)[1].split("\n## ", 1)[0]
    assert f"`{shipped}`" in section

"""The preflight's URL checks against a local HTTP server laid out like the mirrors (the
CentOS vault's ISO folder, install tree and repositories, a Debian archive, an image host),
pointed to by test profiles: what the plan fetches is found, and each URL that is missing,
of the wrong size, not what it claims to be, refused or silent is reported, fast."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.mirror import (IMAGE, ISO, ISO_BYTES, REPOS, TREE, closed_port, lay_out,
                          newton_profile, serve)
from vmlab import paths
from vmlab.preflight import urls
from vmlab.profile import load_profile

NEWTON_CHECKS = {"install ISO", "install tree", "yum repository vmlab-os",
                 "yum repository vmlab-updates", "yum repository vmlab-extras",
                 "yum repository vmlab-openstack-release",
                 "yum repository vmlab-openstack-newton", "Glance test image"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


@pytest.fixture
def mirror(home):
    with serve(home / "mirror") as running:
        lay_out(running)
        yield running


def checked(home, mirror, timeout: float = urls.TIMEOUT, **options) -> dict:
    loaded = load_profile(str(newton_profile(home / "mirrored.yaml", mirror, "test:///unused",
                                             **options)))
    results = urls.check_all(urls.planned_fetches("mirrored", loaded), timeout).results()
    return {result.check.name: result for result in results}


def test_everything_newton_aio_fetches_is_found_on_the_mirror(home, mirror):
    results = checked(home, mirror)
    assert set(results) == NEWTON_CHECKS
    assert {name: r.check.status for name, r in results.items()} == \
        dict.fromkeys(NEWTON_CHECKS, "ok")
    iso = results["install ISO"]
    assert iso.size == ISO_BYTES
    assert "1.00 GiB (1073741824 bytes), sha256 as in the mirror's sha256sum.txt" in \
        iso.check.detail
    assert results["yum repository vmlab-openstack-newton"].fetch.probe == \
        mirror.url(REPOS[-1] + "repodata/repomd.xml")  # $basearch expanded as in the guest
    assert results["install tree"].fetch.probe == mirror.url(TREE + ".treeinfo")


def break_sha256_list(mirror):
    mirror.put(ISO.rsplit("/", 1)[0] + "/sha256sum.txt",
               f"{'cd' * 32}  CentOS-7-x86_64-Minimal-2009.iso\n{'ab' * 32}  other.iso\n"
               .encode())


@pytest.mark.parametrize("damage, name, detail, fix", [
    (lambda m: m.remove(ISO), "install ISO", "not found (HTTP 404) (from install.iso_url)",
     "check install.iso_url"),
    (lambda m: m.put(ISO, b"<html>gone</html>" * 10), "install ISO",
     "170 bytes: too small for an install ISO", "check install.iso_url"),
    (break_sha256_list, "install ISO", f"the mirror's sha256sum.txt gives sha256 {'cd' * 32}; "
     f"the profile's install.iso_sha256 is {'ab' * 32}", "correct install.iso_sha256"),
    (lambda m: m.remove(TREE + ".treeinfo"), "install tree",
     ".treeinfo not found (HTTP 404) (from install.install_url)", "must name an install tree"),
    (lambda m: m.put(TREE + ".treeinfo", b"hello\n"), "install tree",
     ".treeinfo answers but is not one", "must name an install tree"),
    (lambda m: m.remove(REPOS[-1] + "repodata/repomd.xml"),
     "yum repository vmlab-openstack-newton",
     "repodata/repomd.xml not found (HTTP 404) (from /etc/yum.repos.d/vmlab-openstack.repo "
     "(stage openstack-repos) [vmlab-openstack-newton])", "openstack_repo_url"),
    (lambda m: m.put(REPOS[1] + "repodata/repomd.xml", b"<html/>"),
     "yum repository vmlab-updates", "answers but is not yum metadata", "openstack.mirror"),
    (lambda m: m.remove(IMAGE), "Glance test image", "not found (HTTP 404)",
     "openstack.image_url"),
])
def test_a_broken_mirror_is_reported_where_it_breaks(home, mirror, damage, name, detail, fix):
    damage(mirror)
    results = checked(home, mirror)
    failed = {n: r.check for n, r in results.items() if r.check.status != "ok"}
    assert list(failed) == [name]
    assert failed[name].status == "fail" and detail in failed[name].detail
    assert fix in failed[name].fix


def test_a_server_that_refuses_head_is_asked_for_one_byte(home, mirror):
    mirror.refuse_head.add("/" + ISO)
    result = checked(home, mirror)["install ISO"]
    assert result.check.status == "ok" and result.size == ISO_BYTES


def test_an_interrupted_download_larger_than_the_servers_file_is_reported(home, mirror):
    partial = paths.cache_dir() / "isos" / "CentOS-7-x86_64-Minimal-2009.iso.part"
    partial.parent.mkdir(parents=True)
    with partial.open("wb") as handle:
        handle.truncate(ISO_BYTES + 1)
    check = checked(home, mirror)["install ISO"].check
    assert check.status == "fail" and "the file changed" in check.detail
    assert check.fix == f"delete {partial}"


def test_a_verified_iso_in_the_cache_is_not_asked_for(home, mirror):
    isos = paths.cache_dir() / "isos"
    isos.mkdir(parents=True)
    (isos / "CentOS-7-x86_64-Minimal-2009.iso").write_bytes(b"iso")
    (isos / "CentOS-7-x86_64-Minimal-2009.iso.sha256").write_text(
        f"{'ab' * 32}  CentOS-7-x86_64-Minimal-2009.iso\n")
    mirror.remove(ISO)
    result = checked(home, mirror)["install ISO"]
    assert result.check.status == "ok" and "verified: not fetched" in result.check.detail
    assert result.size == 3


@pytest.fixture
def quick_retry(monkeypatch):
    monkeypatch.setattr(urls, "RETRY_DELAY", 0.1)


def test_a_mirror_busy_once_is_asked_again_and_passes(home, mirror, quick_retry):
    mirror.busy["/" + TREE + ".treeinfo"] = 1
    mirror.busy["/" + ISO] = 1
    results = checked(home, mirror)
    assert results["install tree"].check.status == "ok", results["install tree"].check
    assert results["install ISO"].check.status == "ok", results["install ISO"].check
    assert mirror.busy["/" + TREE + ".treeinfo"] == 0 and mirror.busy["/" + ISO] == 0


def test_a_mirror_busy_twice_fails_with_its_answer(home, mirror, quick_retry):
    mirror.busy["/" + TREE + ".treeinfo"] = 3
    result = checked(home, mirror)["install tree"]
    assert result.check.status == "fail"
    assert "(HTTP 503)" in result.check.detail
    assert mirror.busy["/" + TREE + ".treeinfo"] == 1  # asked exactly twice


def test_a_mirror_that_refuses_connections_fails_every_check_at_once(home, mirror, quick_retry):
    mirror.port = closed_port()
    started = time.monotonic()
    results = checked(home, mirror)
    assert time.monotonic() - started < 3
    assert {r.check.status for r in results.values()} == {"fail"}
    assert f"127.0.0.1:{mirror.port} refuses connections" in results["install ISO"].check.detail


def test_a_mirror_that_never_answers_fails_within_the_timeout(home, mirror, quick_retry):
    silent = socket.socket()  # accepts connections (the kernel does) but never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    mirror.port = silent.getsockname()[1]
    try:
        started = time.monotonic()
        results = checked(home, mirror, timeout=0.5)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert elapsed < 2.5  # every URL at once, each asked twice within its timeout
    assert {r.check.status for r in results.values()} == {"fail"}
    assert "did not answer within the timeout" in results["install tree"].check.detail


def test_a_name_that_does_not_resolve_says_so(home, mirror, monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == "vault.example.invalid":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    fetch = urls.Fetch("install tree", "http://vault.example.invalid/os/",
                       "http://vault.example.invalid/os/.treeinfo", "tree", "install.install_url",
                       urls.TREE_FIX)
    check = urls.check(fetch).check
    assert check.status == "fail"
    assert "the name vault.example.invalid does not resolve" in check.detail


def test_a_name_lookup_that_hangs_holds_nothing_past_the_deadline(home, mirror, monkeypatch,
                                                                  quick_retry):
    """The socket timeout does not cover the name lookup: the deadline does."""
    release = threading.Event()

    def hanging_resolver(*args, **kwargs):
        release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hanging_resolver)
    try:
        started = time.monotonic()
        results = checked(home, mirror, timeout=0.5)
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert elapsed < 3  # 2 x 0.5 s + 0.1 s + 1 s, not the 30 s the lookups hang
    assert all(r.check.status == "fail" and "no answer within 2s" in r.check.detail
               for r in results.values())


def test_every_url_is_asked_once(home, mirror):
    loaded = load_profile(str(newton_profile(home / "same.yaml", mirror, "test:///unused",
                                             extra="")))
    fetches = urls.planned_fetches("same", loaded)
    assert len({f.probe for f in fetches}) == len(fetches)
    # the install tree and the vmlab-os repository are one folder: asked for different files
    assert {f.kind for f in fetches if f.url == mirror.url(TREE)} == {"tree", "repo"}


# -- Debian: the image's mirror and the apt sources the stages write -------------------------

DEBIAN_RELEASE = b"Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\n"


def debian_profile(home, mirror):
    path = home / "debian.yaml"
    path.write_text(f"extends: zed-aio-debian12\nname: debian\n"
                    f"install: {{method: image, mirror: {mirror.url('debian')}}}\n"
                    f"openstack: {{mirror_url: {mirror.url('debian')}}}\n")
    return load_profile(str(path))


def test_a_debian_profile_checks_the_release_files_of_its_mirror(home, mirror):
    for suite in ("bookworm", "bookworm-updates"):
        mirror.put(f"debian/dists/{suite}/Release", DEBIAN_RELEASE)
    mirror.put("debian-security/dists/bookworm-security/Release", DEBIAN_RELEASE)
    loaded = debian_profile(home, mirror)
    results = urls.check_all(urls.planned_fetches("debian", loaded), 5).results()
    assert {r.check.name: r.check.status for r in results} == {
        "Debian mirror (bookworm)": "ok", "Debian mirror (bookworm-updates)": "ok",
        "Debian mirror (bookworm-security)": "ok"}  # the stages' sources.list: the same URLs

    mirror.remove("debian-security/dists/bookworm-security/Release")
    results = urls.check_all(urls.planned_fetches("debian", loaded), 5).results()
    failed = [r.check for r in results if r.check.status == "fail"]
    assert [c.name for c in failed] == ["Debian mirror (bookworm-security)"]
    assert mirror.url("debian-security/dists/bookworm-security/Release") in failed[0].detail
    assert "install.mirror" in failed[0].fix

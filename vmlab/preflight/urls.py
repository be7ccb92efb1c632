"""Every URL a create of the profile will fetch, and whether each answers as it should.

What is fetched comes from the profile (the install ISO, the install tree, the Debian mirror
an image is built from, the Glance test image) and from the plan: every yum repository and
apt source the stages write into the guest. Each URL is asked once, all in parallel, with a
short timeout, so the whole check takes seconds even when nothing answers. A file already in
vmlab's cache (verified) is not fetched, so it is not asked for either.
"""
from __future__ import annotations

import configparser
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from vmlab import __version__, paths
from vmlab.drivers.base import Check
from vmlab.profile import ImageInstall, KickstartInstall, LoadedProfile, PreseedInstall

TIMEOUT = 5.0
MIB = 1 << 20
GIB = 1 << 30
#: Smaller than any installer ISO: a file this small is an error page or a cut-off upload.
MIN_ISO_BYTES = 32 * MIB
#: Where distributions publish the checksums of their ISOs, next to them.
CHECKSUM_LISTS = ("sha256sum.txt", "SHA256SUMS")
READ_LIMIT = 64 * 1024
#: yum's variables, as a CentOS 7 x86_64 guest expands them.

ISO_FIX = ("check install.iso_url (the CentOS vault keeps every release's ISOs under "
           "https://vault.centos.org/<release>/isos/x86_64/), or put the ISO into {cache}")
TREE_FIX = ("install.install_url must name an install tree: the folder holding .treeinfo, "
            "images/ and Packages/ (e.g. http://vault.centos.org/7.9.2009/os/x86_64/)")
REPO_FIX = ("point the profile's openstack mirror settings (openstack.mirror, mirror_url, "
            "openstack_repo_url, release_repo_url) at a repository that answers")
DEBIAN_FIX = "set install.mirror (or openstack.mirror_url) to a Debian mirror that answers"
IMAGE_FIX = "set openstack.image_url to an image that answers, or null for a small local one"


@dataclass(frozen=True)
class Fetch:
    """One URL the plan fetches and how to tell that it answers as it should."""

    what: str
    url: str  # what the plan fetches
    probe: str  # what is asked
    kind: str  # iso | tree | repo | mirrorlist | release | file | udebs
    source: str  # where it comes from: a profile key, or a file a stage writes
    fix: str
    cached: Path | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class Answer:
    status: int
    size: int | None
    content_type: str
    body: bytes


@dataclass(frozen=True)
class UrlResult:
    check: Check
    fetch: Fetch
    size: int | None = None
    #: a udebs check's debian-installer index (decompressed), for the netboot kernel's check
    udeb_index: bytes | None = None


# -- what the plan fetches ----------------------------------------------------------------

def planned_fetches(lab: str, loaded: LoadedProfile) -> list[Fetch]:
    profile = loaded.profile
    install = profile.install
    fetches: list[Fetch] = []
    if isinstance(install, KickstartInstall):
        fetches += _kickstart_fetches(install)
    elif isinstance(install, ImageInstall):
        fetches += _image_fetches(install)
    elif isinstance(install, PreseedInstall):
        fetches += _preseed_fetches(install)
    fetches += _stage_fetches(lab, loaded)
    unique: dict[str, Fetch] = {}
    for fetch in fetches:
        unique.setdefault(fetch.probe, fetch)
    return list(unique.values())


def cached_copy(directory: Path, url: str, sha256: str | None) -> Path | None:
    """The copy vmlab.iso.fetch_iso keeps of ``url``, if it is there and verified."""
    name = Path(urlsplit(url).path).name or "download"
    final, verified = directory / name, directory / f"{name}.sha256"
    if final.is_file() and verified.is_file() and (
            sha256 is None or verified.read_text().split()[0] == sha256.lower()):
        return final
    return None


def _kickstart_fetches(install: KickstartInstall) -> list[Fetch]:
    isos = paths.cache_dir() / "isos"
    tree = install.install_url if install.install_url.endswith("/") \
        else install.install_url + "/"
    return [
        Fetch("install ISO", install.iso_url, install.iso_url, "iso", "install.iso_url",
              ISO_FIX.format(cache=isos), cached_copy(isos, install.iso_url, install.iso_sha256),
              install.iso_sha256),
        Fetch("install tree", install.install_url, tree + ".treeinfo", "tree",
              "install.install_url", TREE_FIX),
    ]


def _image_fetches(install: ImageInstall) -> list[Fetch]:
    from vmlab.image import DEFAULT_MIRROR

    mirror = (install.mirror or DEFAULT_MIRROR).rstrip("/")
    suite = install.suite
    # the guest image's own sources.list (vmlab.image) names these three
    return [Fetch(f"Debian mirror ({name})", base, f"{base}/dists/{name}/Release", "release",
                  "install.mirror", DEBIAN_FIX)
            for base, name in ((mirror, suite), (mirror, f"{suite}-updates"),
                               (f"{mirror}-security", f"{suite}-security"))]


def _preseed_fetches(install: PreseedInstall) -> list[Fetch]:
    """What the installer fetches: its components from the mirror's suite (and, once
    installed, the security suite the preseed's apt-setup names)."""
    mirror = f"http://{install.mirror_host}{install.mirror_directory.rstrip('/')}"
    fix = ("set install.mirror_host and install.mirror_directory to a Debian mirror that "
           "answers")
    suite = install.suite
    return [Fetch(f"Debian mirror ({name})", base, f"{base}/dists/{name}/Release", "release",
                  "install.mirror_host", fix)
            for base, name in ((mirror, suite), (mirror, f"{suite}-updates"),
                               (f"http://{install.mirror_host}/debian-security",
                                f"{suite}-security"))] + [
        Fetch("debian-installer's components", mirror, f"{mirror}/dists/{suite}", "udebs",
              "install.mirror_host", fix)]


def udebs_suite(fetch: Fetch) -> str:
    """The suite of a udebs fetch (its probe is ``<mirror>/dists/<suite>``)."""
    return fetch.probe.rsplit("/", 1)[1]


def _stage_fetches(lab: str, loaded: LoadedProfile) -> list[Fetch]:
    """The repositories the stages configure in the guest, and the files they bring."""
    from vmlab.plan import plan
    from vmlab.stages import resolve_stages

    profile = loaded.profile
    fetches: list[Fetch] = []
    for stage in plan(lab, loaded):
        for step in stage["install"]:
            path = step.get("write", "")
            where = f"{path} (stage {stage['stage']})"
            if path.startswith("/etc/yum.repos.d/") and path.endswith(".repo"):
                fetches += _yum_fetches(step["content"], where, profile.platform)
            elif path == "/etc/apt/sources.list" or (
                    path.startswith("/etc/apt/sources.list.d/") and path.endswith(".list")):
                fetches += _apt_fetches(step["content"], where)
    url = profile.openstack.image_url
    if url and any("image" in stage.host_files for stage in resolve_stages(loaded)):
        # vmlab.hostfiles downloads it on the host, for the stage to upload
        fetches.append(Fetch(
            "Glance test image", url, url, "file", "openstack.image_url", IMAGE_FIX,
            cached_copy(paths.cache_dir() / "downloads", url, profile.openstack.image_sha256)))
    return fetches


def _yum_fetches(text: str, where: str, platform: str) -> list[Fetch]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    from vmlab.platforms import distro
    from vmlab.platforms.packaging import Yum

    packaging = distro(platform).packaging
    variables = packaging.repo_variables if isinstance(packaging, Yum) else {}

    def expand(url: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: variables.get(m.group(1), m.group(0)), url)

    fetches = []
    for name in parser.sections():
        section = parser[name]
        if section.get("enabled", "1").strip() == "0":
            continue
        for url in section.get("baseurl", "").split():
            url = expand(url)
            fetches.append(Fetch(f"yum repository {name}", url,
                                 url.rstrip("/") + "/repodata/repomd.xml", "repo",
                                 f"{where} [{name}]", REPO_FIX))
        if section.get("mirrorlist"):
            url = expand(section["mirrorlist"].strip())
            fetches.append(Fetch(f"yum mirror list {name}", url, url, "mirrorlist",
                                 f"{where} [{name}]", REPO_FIX))
    return fetches


def _apt_fetches(text: str, where: str) -> list[Fetch]:
    fetches = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            base, suite = words[1].rstrip("/"), words[2]
            fetches.append(Fetch(f"apt source {suite}", base,
                                 f"{base}/dists/{suite}/Release", "release", where, DEBIAN_FIX))
    return fetches


# -- asking -------------------------------------------------------------------------------

def check_all(fetches: list[Fetch], timeout: float = TIMEOUT) -> "PendingChecks":
    """Start asking every URL at once; ``results()`` waits for the answers."""
    return PendingChecks(fetches, timeout)


class PendingChecks:
    """URL checks running in daemon threads: a name lookup that hangs past every timeout
    holds neither the answer nor vmlab's exit."""

    def __init__(self, fetches: list[Fetch], timeout: float) -> None:
        self.fetches, self.timeout = fetches, timeout
        self._results: dict[int, UrlResult] = {}
        self.deadline = time.monotonic() + self.deadline_seconds
        self._threads = [threading.Thread(target=self._run, args=(index, fetch), daemon=True,
                                          name=f"vmlab-preflight-{index}")
                         for index, fetch in enumerate(fetches)]
        for thread in self._threads:
            thread.start()

    def _run(self, index: int, fetch: Fetch) -> None:
        try:
            self._results[index] = check(fetch, self.timeout)
        except Exception as exc:  # noqa: BLE001 - a check must not take the others down
            self._results[index] = UrlResult(_fail(fetch, f"checking it failed: {exc}"), fetch)

    def results(self) -> list[UrlResult]:
        for thread in self._threads:
            thread.join(max(0.0, self.deadline - time.monotonic()))
        return [self._results.get(index) or UrlResult(
                    _fail(fetch, f"no answer within {self.deadline_seconds:.0f}s"), fetch)
                for index, fetch in enumerate(self.fetches)]

    @property
    def deadline_seconds(self) -> float:
        # a request asked twice (see ask), and a second to spare
        return 2 * self.timeout + RETRY_DELAY + 1


def _ok(fetch: Fetch, detail: str) -> Check:
    return Check("urls", fetch.what, "ok", f"{fetch.url}: {detail}")


def _fail(fetch: Fetch, detail: str, fix: str | None = None) -> Check:
    return Check("urls", fetch.what, "fail", f"{fetch.url}: {detail} (from {fetch.source})",
                 fix if fix is not None else fetch.fix)


def check(fetch: Fetch, timeout: float = TIMEOUT) -> UrlResult:
    if fetch.cached is not None:
        return UrlResult(_ok(fetch, f"in the cache ({fetch.cached}), verified: not fetched"),
                         fetch, fetch.cached.stat().st_size)
    try:
        if fetch.kind == "udebs":
            from vmlab.preflight.installer import read_components

            components, index = read_components(fetch.what, fetch.url, udebs_suite(fetch),
                                                timeout, fetch.fix)
            return UrlResult(components, fetch, udeb_index=index)
        if fetch.kind in ("iso", "file"):
            return _check_download(fetch, timeout)
        answer = ask(fetch.probe, "GET", timeout)
    except UnreachableError as exc:
        return UrlResult(_fail(fetch, str(exc)), fetch)
    if answer.status != 200:
        missing = "not found" if answer.status == 404 else "refused"
        return UrlResult(_fail(fetch, f"{fetch.probe} {missing} (HTTP {answer.status})"), fetch)
    body = answer.body
    if fetch.kind == "tree" and not re.search(rb"^\[(general|header|tree)\]", body, re.M):
        return UrlResult(_fail(fetch, ".treeinfo answers but is not one (no [general] or "
                               "[tree] section)"), fetch)
    if fetch.kind == "repo" and b"<repomd" not in body:
        return UrlResult(_fail(fetch, "repodata/repomd.xml answers but is not yum metadata"),
                         fetch)
    if fetch.kind == "release" and not re.search(rb"^(Suite|Codename):", body, re.M):
        return UrlResult(_fail(fetch, "the Release file answers but is not one"), fetch)
    if fetch.kind == "mirrorlist" and not body.strip():
        return UrlResult(_fail(fetch, "the mirror list is empty"), fetch)
    found = {"tree": "an install tree (.treeinfo)", "repo": "a yum repository (repomd.xml)",
             "release": "a Debian archive (Release)", "mirrorlist": "a mirror list"}
    return UrlResult(_ok(fetch, found[fetch.kind]), fetch)


def _check_download(fetch: Fetch, timeout: float) -> UrlResult:
    """A large file: its size from HEAD (or a one-byte GET where HEAD is refused)."""
    answer = ask(fetch.probe, "HEAD", timeout)
    if answer.status in (403, 405, 501):
        answer = ask(fetch.probe, "GET", timeout, first_byte=True)
    if answer.status == 404:
        return UrlResult(_fail(fetch, "not found (HTTP 404)"), fetch)
    if answer.status not in (200, 206):
        return UrlResult(_fail(fetch, f"refused (HTTP {answer.status})"), fetch)
    if answer.content_type.startswith("text/html"):
        return UrlResult(_fail(fetch, "answers with an HTML page, not the file"), fetch)
    size = answer.size
    if size is None:
        return UrlResult(Check("urls", fetch.what, "warn",
                               f"{fetch.url}: answers, but gives no size", ""), fetch)
    if fetch.kind == "iso" and size < MIN_ISO_BYTES:
        return UrlResult(_fail(fetch, f"{size} bytes: too small for an install ISO (an error "
                               "page, or a cut-off upload?)"), fetch, size)
    if fetch.kind == "iso":
        partial = paths.cache_dir() / "isos" / (Path(urlsplit(fetch.url).path).name + ".part")
        if partial.is_file() and partial.stat().st_size > size:
            return UrlResult(_fail(fetch, f"{size} bytes on the server, but the interrupted "
                                   f"download {partial} holds {partial.stat().st_size}: the "
                                   "file changed", f"delete {partial}"), fetch, size)
        listed = published_sha256(fetch.url, timeout)
        if listed is not None and fetch.sha256 and listed[1] != fetch.sha256.lower():
            return UrlResult(_fail(
                fetch, f"the mirror's {listed[0]} gives sha256 {listed[1]}; the profile's "
                f"install.iso_sha256 is {fetch.sha256}",
                "check both against the distribution's published checksums and correct "
                "install.iso_sha256 (or install.iso_url)"), fetch, size)
        note = f", sha256 as in the mirror's {listed[0]}" if listed else ""
        return UrlResult(_ok(fetch, f"{size / GIB:.2f} GiB ({size} bytes){note}"), fetch, size)
    return UrlResult(_ok(fetch, f"{size / MIB:.1f} MiB"), fetch, size)


def published_sha256(url: str, timeout: float) -> tuple[str, str] | None:
    """(list name, sha256) of the file at ``url`` from a checksum list next to it."""
    folder, name = url.rsplit("/", 1)
    for listing in CHECKSUM_LISTS:
        try:
            answer = ask(f"{folder}/{listing}", "GET", timeout)
        except UnreachableError:
            return None
        if answer.status != 200:
            continue
        for line in answer.body.decode("utf-8", "replace").splitlines():
            # GNU style "<sha256>  <name>" or BSD style "SHA256 (<name>) = <sha256>"
            match = re.fullmatch(r"(?P<digest>[0-9a-fA-F]{64})\s+\*?(?P<name>\S+)",
                                 line.strip()) or \
                re.fullmatch(r"SHA256 \((?P<name>\S+)\) = (?P<digest>[0-9a-fA-F]{64})",
                             line.strip())
            if match is not None and match["name"] == name:
                return listing, match["digest"].lower()
    return None


class UnreachableError(Exception):
    """The URL did not answer: the message says why, in a few words."""


#: Answers a busy mirror or CDN gives now and not a second later
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
RETRY_DELAY = 1.0


def ask(url: str, method: str, timeout: float, *, first_byte: bool = False) -> Answer:
    """One request, asked a second time after a short pause when the first gets no answer
    or a transient server error: one hiccup of a mirror must not stop a 40-minute build."""
    import tenacity

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(2), wait=tenacity.wait_fixed(RETRY_DELAY),
        retry=(tenacity.retry_if_exception_type(UnreachableError) |
               tenacity.retry_if_result(lambda answer: answer.status in TRANSIENT_STATUSES)),
        retry_error_callback=lambda state: state.outcome.result(), reraise=True)
    return retrying(_ask_once, url, method, timeout, first_byte=first_byte)


def _ask_once(url: str, method: str, timeout: float, *, first_byte: bool = False) -> Answer:
    headers = {"User-Agent": f"vmlab-preflight/{__version__}"}
    if first_byte:
        headers["Range"] = "bytes=0-0"
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            body = response.read(READ_LIMIT) if method == "GET" and not first_byte else b""
            return Answer(response.status, _size(response.headers),
                          response.headers.get("Content-Type", ""), body)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, None, "", b"")
    except urllib.error.URLError as exc:
        raise UnreachableError(_reason(urlsplit(url), exc.reason)) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise UnreachableError(_reason(urlsplit(url), exc)) from exc


def _size(headers) -> int | None:
    content_range = headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _reason(url, reason: object) -> str:
    host = url.hostname or "?"
    port = url.port or (443 if url.scheme == "https" else 80)
    if isinstance(reason, socket.gaierror):
        return f"the name {host} does not resolve"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{host}:{port} did not answer within the timeout"
    if isinstance(reason, ConnectionRefusedError):
        return f"{host}:{port} refuses connections"
    if isinstance(reason, ssl.SSLError):
        return f"TLS with {host} failed: {getattr(reason, 'reason', None) or reason}"
    if isinstance(reason, OSError) and reason.strerror:
        return f"cannot reach {host}:{port}: {reason.strerror}"
    return f"cannot reach {host}:{port}: {reason}"

"""Profiles: YAML files that describe a lab, loaded into a validated model.

A profile is found by name (the user's config dir first, then the shipped ``profiles/``:
a user's profile overrides a shipped one of the same name) or given as a path.
``extends: other`` deep-merges the profile onto its base (mappings merge, lists and scalars
replace); a relative path there is relative to the extending file's folder. Unknown keys
are errors, and every problem is reported with the file it came from and the key path,
never as a traceback.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from vmlab.errors import ProfileError
from vmlab.profileinstall import (IMAGE_SUITES, SERVED_INSTALLS, ImageInstall,  # noqa: F401
                                  Install, KickstartInstall, PreseedInstall)
from vmlab.profiletypes import Bool, Int, Sha256, Strict
from vmlab.platforms import DISTROS, RELEASES
from vmlab import drivers
from vmlab.names import check_hypervisor_name, check_name
from vmlab.profilefiles import (deep_merge, file_defining, find_profile, format_loc,
                                resolve_chain)

STAGE_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,39}$"

#: Largest memory_mib: 4 TiB. QEMU and vSphere accept more on paper, but no host a lab runs
#: on has it; a bigger number is a unit slip (GiB or bytes given as MiB) that would otherwise
#: surface only as the hypervisor's refusal, after the guest image was built.
MAX_MEMORY_MIB = 4 * 1024 * 1024

#: Guest platform -> the install methods that make it (an image is Debian's mmdebstrap, the
#: kickstart is CentOS's) and the OpenStack releases its packages are (the first: default),
#: from the distribution table (vmlab.platforms).
PLATFORM_INSTALLS = {d.name: d.install_methods for d in DISTROS.values()}
PLATFORM_RELEASES = {d.name: d.releases for d in DISTROS.values()}
PlatformName = Literal[tuple(DISTROS)]  # type: ignore[valid-type]
ReleaseName = Literal[tuple(RELEASES)]  # type: ignore[valid-type]


class LibvirtHypervisor(Strict):
    kind: Literal["libvirt"]
    uri: str = "qemu:///system"
    pool: str = "vmlab"

    @field_validator("pool")
    @classmethod
    def _pool_name(cls, value: str) -> str:
        return check_hypervisor_name("storage pool name", value)


class VsphereHypervisor(Strict):
    kind: Literal["vsphere"]
    host: str
    port: Int = Field(443, ge=1, le=65535)
    user: str
    #: Name of the environment variable holding the password (never the password itself).
    password_env: str = "VMLAB_VSPHERE_PASSWORD"
    insecure: Bool = False
    datacenter: str | None = None
    cluster: str | None = None
    host_system: str | None = None
    datastore: str | None = None
    folder: str | None = None


Hypervisor = Annotated[Union[LibvirtHypervisor, VsphereHypervisor], Field(discriminator="kind")]


class Nic(Strict):
    role: Literal["provider", "management"]
    #: ``user``: a user-mode NIC private to the VM; ``nat``/``isolated``: a hypervisor network.
    network: Literal["nat", "isolated", "user"]
    #: Name of the hypervisor network (libvirt network, vSphere port group).
    network_name: str | None = None
    subnet: ipaddress.IPv4Network
    # gateway before address: the address's check reads the gateway
    gateway: ipaddress.IPv4Address | None = None
    address: ipaddress.IPv4Address | None = None
    mac: str | None = None

    @field_validator("subnet")
    @classmethod
    def _room_for_hosts(cls, value: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
        if value.prefixlen > 30:
            raise ValueError(f"subnet /{value.prefixlen} has no room for the guest and the "
                             "hypervisor's address; use /30 or larger (e.g. /24)")
        return value

    @field_validator("gateway")
    @classmethod
    def _gateway_usable(cls, value: ipaddress.IPv4Address | None,
                        info: ValidationInfo) -> ipaddress.IPv4Address | None:
        subnet = info.data.get("subnet")
        if value is not None and subnet is not None:
            _check_host_address("gateway", value, subnet)
        return value

    @field_validator("address")
    @classmethod
    def _address_usable(cls, value: ipaddress.IPv4Address | None,
                        info: ValidationInfo) -> ipaddress.IPv4Address | None:
        subnet = info.data.get("subnet")
        if value is None or subnet is None:
            return value
        _check_host_address("address", value, subnet)
        taken = reserved_addresses(info.data.get("network"), subnet)
        if info.data.get("gateway") is not None:
            taken[info.data["gateway"]] = "the gateway"
        if value in taken:
            raise ValueError(f"address {value} is taken by {taken[value]}; give the guest "
                             "another one")
        return value

    @field_validator("mac")
    @classmethod
    def _mac_form(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.fullmatch(r"(?i)([0-9a-f]{2}:){5}[0-9a-f]{2}", value):
            raise ValueError("expected a MAC address like 52:54:00:12:34:56")
        if int(value[:2], 16) & 1:
            raise ValueError("a multicast MAC (odd first byte) cannot be a NIC's address; "
                             "use a locally administered one like 52:54:00:12:34:56")
        if value == "00:00:00:00:00:00":
            raise ValueError("00:00:00:00:00:00 is not a usable MAC address")
        return value.lower()

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen

    def mac_for(self, lab: str) -> str:
        """The profile's MAC, or a stable locally administered one per lab and role."""
        if self.mac:
            return self.mac
        digest = hashlib.sha256(f"{lab}/{self.role}".encode()).digest()
        return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def _check_host_address(key: str, value: ipaddress.IPv4Address,
                        subnet: ipaddress.IPv4Network) -> None:
    if value not in subnet:
        raise ValueError(f"{key} {value} is not inside subnet {subnet}")
    if value == subnet.network_address:
        raise ValueError(f"{key} {value} is the network address of {subnet}, not a host's")
    if value == subnet.broadcast_address:
        raise ValueError(f"{key} {value} is the broadcast address of {subnet}, not a host's")


def reserved_addresses(network: str | None,
                       subnet: ipaddress.IPv4Network) -> dict[ipaddress.IPv4Address, str]:
    """Addresses of a NIC's subnet that the hypervisor side takes, and whose they are."""
    if network in ("nat", "isolated"):
        # vmlab gives the hypervisor's end of the network the first host (vmspec.network_spec)
        return {next(subnet.hosts()): "the hypervisor's end of the network (its first host)"}
    # A user-mode NIC's other end is QEMU's own stack; the profile names it as the gateway
    # (10.0.2.2 on 10.0.2.0/24), which is checked where given.
    return {}


class VM(Strict):
    hostname: str = "controller"
    cpus: Int = Field(2, ge=1, le=64)
    memory_mib: Int = Field(1024, ge=256, le=MAX_MEMORY_MIB)
    disk_gib: Int = Field(4, ge=1, le=2048)
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    #: Name servers of the guest; null: the provider network's own (vmlab.dns.guest_dns).
    dns: tuple[ipaddress.IPv4Address, ...] | None = None
    nics: tuple[Nic, ...]

    @field_validator("hostname")
    @classmethod
    def _hostname_form(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value):
            raise ValueError("expected a hostname of lower-case letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _one_nic_per_role(self) -> "VM":
        roles = [nic.role for nic in self.nics]
        if roles.count("provider") != 1:
            raise ValueError("exactly one NIC must have role 'provider'")
        if roles.count("management") > 1:
            raise ValueError("at most one NIC may have role 'management'")
        return self

    def nic(self, role: str) -> Nic | None:
        return next((nic for nic in self.nics if nic.role == role), None)


class Ssh(Strict):
    user: str = "root"
    port: Int = Field(22, ge=1, le=65535)
    #: How long one command of a stage may run before the stage fails (a hung guest keeps
    #: its SSH connection alive; this is what ends the wait).
    command_timeout_minutes: Int = Field(60, ge=1, le=24 * 60)


class ScriptStage(Strict):
    """A stage written in the profile itself: shell commands run in the guest."""

    name: str = Field(pattern=STAGE_NAME_RE)
    description: str = ""
    run: tuple[str, ...]
    verify: tuple[str, ...] = ()
    reboot: Bool = False


StageEntry = Union[Annotated[str, Field(pattern=STAGE_NAME_RE)], ScriptStage]


class Snapshots(Strict):
    #: offline: clean shutdown, disk snapshot, start (consistent and small); live: with memory.
    mode: Literal["offline", "live"] = "offline"


class OpenStack(Strict):
    """Settings of the OpenStack stages: the manual's environment and its services."""

    #: Default: the release of the platform's packages (PLATFORM_RELEASES).
    release: ReleaseName = "newton"
    region: str = "RegionOne"
    #: CentOS mirror: the vault (default: the release mirrors are gone), the manual's
    #: aliyun mirror, or a custom base URL in mirror_url.
    mirror: Literal["vault", "aliyun", "custom", "debian"] = "vault"
    mirror_url: str | None = None
    centos_release: str = "7.9.2009"
    #: The Cloud SIG's Newton repository: the vault's 7.4.1708 tree holds Newton's last
    #: builds (docs/newton-aio.md, "Which Newton tree").
    openstack_repo_url: str = "http://vault.centos.org/7.4.1708/cloud/$basearch/openstack-newton/"
    #: Where the release package (centos-release-openstack-newton) is: the extras of the
    #: CentOS release that shipped Newton.
    release_repo_url: str = "http://vault.centos.org/7.3.1611/extras/$basearch/"
    proxy: str | None = None
    ntp_servers: tuple[str, ...] = ("0.centos.pool.ntp.org", "1.centos.pool.ntp.org",
                                    "2.centos.pool.ntp.org")
    #: A host name resolved to check outside DNS in the network stage; null skips it.
    outside_host: str | None = "openstack.org"
    #: The manual's other nodes in /etc/hosts; null: an all-in-one, as the manual's hosts
    #: file has it (compute1, block1, object1, object2 on the controller's address).
    hosts: dict[str, ipaddress.IPv4Address] | None = None
    #: The test image uploaded to Glance; null: a small qcow2 made on the host with qemu-img.
    image_url: str | None = "http://download.cirros-cloud.net/0.3.4/cirros-0.3.4-x86_64-disk.img"
    image_sha256: Sha256 | None = None
    image_name: str = "cirros"

    @model_validator(mode="after")
    def _custom_mirror_has_url(self) -> "OpenStack":
        if self.mirror == "custom" and not self.mirror_url:
            raise ValueError("mirror: custom needs mirror_url")
        return self


class Profile(Strict):
    name: str
    description: str = ""
    extends: str | None = None
    hypervisor: Hypervisor
    install: Install
    vm: VM
    ssh: Ssh = Ssh()
    stages: tuple[StageEntry, ...] = ()
    snapshots: Snapshots = Snapshots()
    #: The guest's distribution, for the stages' platform seam.
    platform: PlatformName = "debian12"
    openstack: OpenStack = OpenStack()
    #: Names of the secrets generated per lab (e.g. ``root``, ``admin``).
    secrets: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()

    @field_validator("name")
    @classmethod
    def _name_form(cls, value: str) -> str:
        return check_name("profile", value)

    @model_validator(mode="before")
    @classmethod
    def _release_of_platform(cls, data: Any) -> Any:
        """Without openstack.release, the release the platform's packages are; without
        install.suite (an image or a preseed install), the platform's Debian suite."""
        if isinstance(data, dict):
            platform = data.get("platform", cls.model_fields["platform"].default)
            distro = DISTROS.get(platform) if isinstance(platform, str) else None
            settings = data.get("openstack", {})
            if distro and isinstance(settings, dict) and "release" not in settings:
                data = {**data, "openstack": {**settings, "release": distro.releases[0]}}
            install = data.get("install")
            if (distro and distro.codename and isinstance(install, dict)
                    and install.get("method") in ("image", "preseed")
                    and "suite" not in install):
                data = {**data, "install": {**install, "suite": distro.codename}}
        return data

    @model_validator(mode="after")
    def _stage_names_unique(self) -> "Profile":
        names = self.stage_names
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"stage names must be unique; repeated: {', '.join(duplicates)}")
        if "complete" in names:
            raise ValueError("'complete' is reserved for the snapshot taken after the last stage")
        return self

    @property
    def stage_names(self) -> list[str]:
        return [entry if isinstance(entry, str) else entry.name for entry in self.stages]


def consistency_problems(profile: Profile) -> list[tuple[tuple[Any, ...], str]]:
    """(key path, problem) for what no single key shows: how keys fit together."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    nics = profile.vm.nics
    for index, nic in enumerate(nics):
        for other_index, other in enumerate(nics[:index]):
            if nic.subnet.overlaps(other.subnet):
                same = "is the same as" if nic.subnet == other.subnet else "overlaps"
                problems.append((("vm", "nics", index, "subnet"),
                                 f"subnet {nic.subnet} {same} vm.nics[{other_index}].subnet "
                                 f"{other.subnet}; each NIC needs a subnet of its own"))
        earlier_macs = [other.mac for other in nics[:index]]
        if nic.mac is not None and nic.mac in earlier_macs:
            problems.append((("vm", "nics", index, "mac"),
                             f"MAC {nic.mac} is also vm.nics[{earlier_macs.index(nic.mac)}]"
                             ".mac; every NIC needs its own"))
        if nic.network_name is not None:
            try:
                drivers.kind(profile.hypervisor.kind).check_network_name(nic.network_name)
            except ValueError as exc:
                problems.append((("vm", "nics", index, "network_name"), str(exc)))
    for index, secret in enumerate(profile.secrets):
        if secret in profile.secrets[:index]:
            problems.append((("secrets", index),
                             f"secret {secret!r} is listed twice "
                             f"(also secrets[{profile.secrets.index(secret)}])"))
    methods = PLATFORM_INSTALLS[profile.platform]
    if profile.install.method not in methods:
        problems.append((("install", "method"),
                         f"install method {profile.install.method!r} cannot make a "
                         f"{profile.platform} guest (an image and a preseed are Debian's, "
                         f"a kickstart CentOS's); platform {profile.platform} installs by "
                         + " or ".join(repr(m) for m in methods)))
    if profile.install.method == "preseed" and profile.hypervisor.kind != "libvirt":
        problems.append((("install", "method"),
                         "a preseed install boots the installer's kernel directly, which only "
                         "libvirt can; on vSphere install by kickstart"))
    suite = getattr(profile.install, "suite", None)
    if (suite is not None and profile.install.method in methods
            and IMAGE_SUITES[suite] != profile.platform):
        problems.append((("install", "suite"),
                         f"suite {suite!r} builds a {IMAGE_SUITES[suite]} guest, not the "
                         f"profile's {profile.platform}; platform {profile.platform} is "
                         f"{DISTROS[profile.platform].codename!r}"))
    releases = PLATFORM_RELEASES[profile.platform]
    if profile.openstack.release not in releases:
        problems.append((("openstack", "release"),
                         f"OpenStack {profile.openstack.release} is not packaged for "
                         f"{profile.platform}; it has " + " or ".join(releases)
                         + " (or leave release out)"))
    return problems


class LoadedProfile(BaseModel):
    """A validated profile and where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    profile: Profile
    path: Path
    chain: tuple[Path, ...]  # the file itself first, then its bases
    #: Each file's own keys, as read (same order as chain): which file set a key.
    raw: tuple[dict[str, Any], ...] = Field(default=(), repr=False)

    def file_defining(self, *loc: Any) -> Path:
        """The file that set the key at ``loc`` (e.g. "stages", 2, "name")."""
        return file_defining(list(loc), list(zip(self.chain, self.raw)) or [(self.path, {})])


# -- loading --------------------------------------------------------------------------

def load_profile(name_or_path: str) -> LoadedProfile:
    """Find, merge and validate a profile; ProfileError lists every problem."""
    path = find_profile(name_or_path)
    chain = resolve_chain(path)
    merged: dict[str, Any] = {}
    for _, data in reversed(chain):
        merged = deep_merge(merged, data)
    merged["extends"] = chain[0][1].get("extends")
    merged.setdefault("name", path.stem)
    try:
        profile = Profile.model_validate(merged)
    except ValidationError as exc:
        problems = [_describe(error, chain) for error in exc.errors()
                    if not _wrong_union_branch(error)]
        raise _not_valid(path, problems) from None
    problems = [f"{file_defining(list(loc), chain)}: {format_loc(list(loc))}: {message}"
                for loc, message in consistency_problems(profile)]
    if problems:
        raise _not_valid(path, problems)
    return LoadedProfile(profile=profile, path=path, chain=tuple(p for p, _ in chain),
                         raw=tuple(data for _, data in chain))


def _not_valid(path: Path, problems: list[str]) -> ProfileError:
    return ProfileError(
        f"profile {path} is not valid ({len(problems)} problem"
        f"{'s' if len(problems) != 1 else ''})",
        problems=problems,
        hint="fix the keys named above; see profiles/demo.yaml for a complete example")


#: Union members pydantic puts in an error's location; "function-after[...]" ones too.
_UNION_TAGS = {"libvirt", "vsphere", "image", "kickstart", "str", "ScriptStage",
               "constrained-str"}


def _describe(error: dict[str, Any], chain: list[tuple[Path, dict[str, Any]]]) -> str:
    loc = [part for part in error["loc"]
           if not (isinstance(part, str) and (part in _UNION_TAGS or part.startswith("function-")))]
    key = format_loc(loc) or "(top level)"
    source = file_defining(loc, chain)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling; unknown keys are not allowed)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    given = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden") and not isinstance(given, (dict, list)):
        shown = repr(given)
        message += f" (given: {shown if len(shown) <= 80 else shown[:77] + '...'})"
    return f"{source}: {key}: {message}"


def _wrong_union_branch(error: dict[str, Any]) -> bool:
    """A stage given as a mapping is a script stage: drop the 'should be a string' noise."""
    return (isinstance(error.get("input"), dict)
            and any(part in ("str", "constrained-str") for part in error["loc"]))

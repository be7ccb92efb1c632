"""Profiles: YAML files that describe a lab, loaded into a validated model.

A profile is found by name (shipped ``profiles/``, then the user's config dir) or given
as a path. ``extends: other`` deep-merges the profile onto its base (mappings merge, lists
and scalars replace). Unknown keys are errors, and every problem is reported with the
file it came from and the key path, never as a traceback.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vmlab.errors import ProfileError
from vmlab.paths import shipped_profiles_dir, user_profiles_dir

NAME_RE = r"^[a-z0-9][a-z0-9-]{0,39}$"
STAGE_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,39}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LibvirtHypervisor(Strict):
    kind: Literal["libvirt"]
    uri: str = "qemu:///system"
    pool: str = "vmlab"


class VsphereHypervisor(Strict):
    kind: Literal["vsphere"]
    host: str
    port: int = 443
    user: str
    #: Name of the environment variable holding the password (never the password itself).
    password_env: str = "VMLAB_VSPHERE_PASSWORD"
    insecure: bool = False
    datacenter: str | None = None
    cluster: str | None = None
    host_system: str | None = None
    datastore: str | None = None
    folder: str | None = None


Hypervisor = Annotated[Union[LibvirtHypervisor, VsphereHypervisor], Field(discriminator="kind")]


class ImageInstall(Strict):
    """Build the guest disk from Debian packages (mmdebstrap) and boot its kernel directly."""

    method: Literal["image"]
    suite: Literal["bookworm"] = "bookworm"
    packages: tuple[str, ...] = ()
    mirror: str | None = None


class KickstartInstall(Strict):
    """Install from the distribution's ISO with a served kickstart (CentOS 7)."""

    method: Literal["kickstart"]
    template: str = "centos7.ks.j2"
    iso_url: str = "https://vault.centos.org/7.9.2009/isos/x86_64/CentOS-7-x86_64-Minimal-2009.iso"
    iso_sha256: str = Field("07b94e6b1a0b0260b94c83d6bb76b26bf7a310dc78d273c54eb5fad73fbd8a8c",
                            pattern=r"^[0-9a-f]{64}$")
    #: The install tree the kickstart's `url` command points at.
    install_url: str = "http://vault.centos.org/7.9.2009/os/x86_64/"
    #: The ISO's volume label, for anaconda's inst.stage2 when the ISO is a CD-ROM.
    iso_label: str = "CentOS 7 x86_64"
    timezone: str = "UTC"
    packages: tuple[str, ...] = ()
    #: Address the install server listens on; default: what the provider network reaches.
    serve_on: ipaddress.IPv4Address | None = None
    install_timeout_minutes: int = Field(90, ge=5)


Install = Annotated[Union[ImageInstall, KickstartInstall], Field(discriminator="method")]


class Nic(Strict):
    role: Literal["provider", "management"]
    #: ``user``: a user-mode NIC private to the VM; ``nat``/``isolated``: a hypervisor network.
    network: Literal["nat", "isolated", "user"]
    #: Name of the hypervisor network (libvirt network, vSphere port group).
    network_name: str | None = None
    subnet: ipaddress.IPv4Network
    address: ipaddress.IPv4Address | None = None
    gateway: ipaddress.IPv4Address | None = None
    mac: str | None = None

    @field_validator("mac")
    @classmethod
    def _mac_form(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(?i)([0-9a-f]{2}:){5}[0-9a-f]{2}", value):
            raise ValueError("expected a MAC address like 52:54:00:12:34:56")
        return value.lower() if value else value

    @model_validator(mode="after")
    def _address_in_subnet(self) -> "Nic":
        for key in ("address", "gateway"):
            value = getattr(self, key)
            if value is not None and value not in self.subnet:
                raise ValueError(f"{key} {value} is not inside subnet {self.subnet}")
        return self

    @property
    def prefix(self) -> int:
        return self.subnet.prefixlen

    def mac_for(self, lab: str) -> str:
        """The profile's MAC, or a stable locally administered one per lab and role."""
        if self.mac:
            return self.mac
        digest = hashlib.sha256(f"{lab}/{self.role}".encode()).digest()
        return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


class VM(Strict):
    hostname: str = "controller"
    cpus: int = Field(2, ge=1, le=64)
    memory_mib: int = Field(1024, ge=256)
    disk_gib: int = Field(4, ge=1, le=2048)
    accel: Literal["auto", "kvm", "tcg"] = "auto"
    dns: tuple[ipaddress.IPv4Address, ...] = (ipaddress.IPv4Address("10.0.2.3"),)
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
    port: int = 22
    #: How long one command of a stage may run before the stage fails (a hung guest keeps
    #: its SSH connection alive; this is what ends the wait).
    command_timeout_minutes: int = Field(60, ge=1, le=24 * 60)


class ScriptStage(Strict):
    """A stage written in the profile itself: shell commands run in the guest."""

    name: str = Field(pattern=STAGE_NAME_RE)
    description: str = ""
    run: tuple[str, ...]
    verify: tuple[str, ...] = ()
    reboot: bool = False


StageEntry = Union[Annotated[str, Field(pattern=STAGE_NAME_RE)], ScriptStage]


class Snapshots(Strict):
    #: offline: clean shutdown, disk snapshot, start (consistent and small); live: with memory.
    mode: Literal["offline", "live"] = "offline"


class OpenStack(Strict):
    """Settings of the OpenStack stages: the manual's environment and its services."""

    release: Literal["newton", "zed"] = "newton"
    region: str = "RegionOne"
    #: CentOS mirror: the vault (default: the release mirrors are gone), the manual's
    #: aliyun mirror, or a custom base URL in mirror_url.
    mirror: Literal["vault", "aliyun", "custom", "debian"] = "vault"
    mirror_url: str | None = None
    centos_release: str = "7.9.2009"
    openstack_repo_url: str = "http://vault.centos.org/7.3.1611/cloud/$basearch/openstack-newton/"
    #: Where the release package (centos-release-openstack-newton) is: the extras of the
    #: CentOS release that shipped Newton.
    release_repo_url: str = "http://vault.centos.org/7.3.1611/extras/$basearch/"
    proxy: str | None = None
    ntp_servers: tuple[str, ...] = ("0.centos.pool.ntp.org", "1.centos.pool.ntp.org",
                                    "2.centos.pool.ntp.org")
    #: A host name resolved to check outside DNS in the network stage; null skips it.
    outside_host: str | None = "openstack.org"
    #: The manual's other nodes, on the management network (/etc/hosts).
    hosts: dict[str, ipaddress.IPv4Address] = {
        "compute1": ipaddress.IPv4Address("192.168.70.31"),
        "block1": ipaddress.IPv4Address("192.168.70.41"),
        "object1": ipaddress.IPv4Address("192.168.70.51"),
        "object2": ipaddress.IPv4Address("192.168.70.52"),
    }
    #: The test image uploaded to Glance; null: a small qcow2 made on the host with qemu-img.
    image_url: str | None = "http://download.cirros-cloud.net/0.3.4/cirros-0.3.4-x86_64-disk.img"
    image_sha256: str | None = None
    image_name: str = "cirros"

    @model_validator(mode="after")
    def _custom_mirror_has_url(self) -> "OpenStack":
        if self.mirror == "custom" and not self.mirror_url:
            raise ValueError("mirror: custom needs mirror_url")
        return self


class Profile(Strict):
    name: str = Field(pattern=NAME_RE)
    description: str = ""
    extends: str | None = None
    hypervisor: Hypervisor
    install: Install
    vm: VM
    ssh: Ssh = Ssh()
    stages: tuple[StageEntry, ...] = ()
    snapshots: Snapshots = Snapshots()
    #: The guest's distribution, for the stages' platform seam.
    platform: Literal["centos7", "debian12"] = "debian12"
    openstack: OpenStack = OpenStack()
    #: Names of the secrets generated per lab (e.g. ``root``, ``admin``).
    secrets: tuple[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], ...] = ()

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


class LoadedProfile(BaseModel):
    """A validated profile and where it came from."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    profile: Profile
    path: Path
    chain: tuple[Path, ...]  # the file itself first, then its bases


# -- finding --------------------------------------------------------------------------

def profile_dirs() -> list[Path]:
    return [shipped_profiles_dir(), user_profiles_dir()]


def find_profile(name_or_path: str) -> Path:
    """The file of a profile given by name or path; ProfileError naming where it looked."""
    candidate = Path(name_or_path).expanduser()
    if os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        if candidate.is_file():
            return candidate.resolve()
        raise ProfileError(f"profile file {name_or_path} does not exist",
                           hint="give an existing .yaml file or a profile name (`vmlab profiles`)")
    for directory in profile_dirs():
        for suffix in (".yaml", ".yml"):
            path = directory / f"{name_or_path}{suffix}"
            if path.is_file():
                return path.resolve()
    known = ", ".join(sorted(p.stem for p in list_profile_files())) or "none"
    raise ProfileError(
        f"no profile named {name_or_path!r}",
        hint=f"known profiles: {known}; looked in " + ", ".join(str(d) for d in profile_dirs()))


def list_profile_files() -> list[Path]:
    """Shipped profiles, then user profiles (a user profile of the same name wins)."""
    found: dict[str, Path] = {}
    for directory in profile_dirs():
        if directory.is_dir():
            for path in sorted(directory.glob("*.y*ml")):
                found[path.stem] = path
    return sorted(found.values(), key=lambda p: p.stem)


# -- loading --------------------------------------------------------------------------

class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} is given twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ProfileError(f"{where}: invalid YAML: {exc.problem or exc.context}",
                           problems=[f"{where}: {exc.problem or exc.context}"],
                           hint="fix the YAML syntax at that line") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: invalid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile must be a mapping of keys, not {type(data).__name__}",
                           problems=[f"{path}: (top level): expected a mapping"])
    return data


#: Keys that select a variant: a mapping that changes one of them replaces its base.
_DISCRIMINATORS = ("kind", "method")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and not any(
                tag in value and value[tag] != merged[key].get(tag) for tag in _DISCRIMINATORS):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """[(file, raw data)] from the given file down to its last base."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    current: Path | None = path
    while current is not None:
        if any(current == seen for seen, _ in chain):
            cycle = " -> ".join(str(p) for p, _ in chain) + f" -> {current}"
            raise ProfileError(f"profiles extend each other in a cycle: {cycle}",
                               problems=[f"{chain[-1][0]}: extends: cycle {cycle}"],
                               hint="remove one of the `extends:` keys")
        data = read_yaml(current)
        chain.append((current, data))
        base = data.get("extends")
        if base is None:
            current = None
        elif not isinstance(base, str):
            raise ProfileError(f"{current}: extends: expected a profile name",
                               problems=[f"{current}: extends: expected a profile name or path"])
        else:
            try:
                current = _find_base(base, relative_to=current.parent)
            except ProfileError as exc:
                raise ProfileError(f"{current}: extends: {exc.message}",
                                   problems=[f"{current}: extends: {exc.message}"],
                                   hint=exc.hint) from None
    return chain


def _find_base(name: str, relative_to: Path) -> Path:
    sibling = relative_to / f"{name}.yaml"
    if os.sep not in name and sibling.is_file():
        return sibling.resolve()
    return find_profile(name)


def load_profile(name_or_path: str) -> LoadedProfile:
    """Find, merge and validate a profile; ProfileError lists every problem."""
    path = find_profile(name_or_path)
    chain = _resolve_chain(path)
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
        raise ProfileError(
            f"profile {path} is not valid ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''})",
            problems=problems,
            hint="fix the keys named above; see profiles/demo.yaml for a complete example",
        ) from None
    return LoadedProfile(profile=profile, path=path, chain=tuple(p for p, _ in chain))


_UNION_TAGS = {"libvirt", "vsphere", "image", "kickstart", "str", "ScriptStage",
               "constrained-str", "function-after[_mac_form(), str]"}


def _describe(error: dict[str, Any], chain: list[tuple[Path, dict[str, Any]]]) -> str:
    loc = [part for part in error["loc"] if not (isinstance(part, str) and part in _UNION_TAGS)]
    key = _format_loc(loc) or "(top level)"
    source = _file_defining(loc, chain)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (check its spelling; unknown keys are not allowed)"
    elif error["type"] == "missing":
        message = "required key is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, "):]
    given = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden") and not isinstance(given, (dict, list)):
        message += f" (given: {given!r})"
    return f"{source}: {key}: {message}"


def _wrong_union_branch(error: dict[str, Any]) -> bool:
    """A stage given as a mapping is a script stage: drop the 'should be a string' noise."""
    return (isinstance(error.get("input"), dict)
            and any(part in ("str", "constrained-str") for part in error["loc"]))


def _format_loc(loc: list[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _file_defining(loc: list[Any], chain: list[tuple[Path, dict[str, Any]]]) -> Path:
    """The most-derived file whose raw data holds the longest prefix of ``loc``."""
    best, best_depth = chain[0][0], -1
    for path, data in chain:
        node: Any = data
        depth = 0
        for part in loc:
            if isinstance(node, dict) and part in node:
                node, depth = node[part], depth + 1
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node, depth = node[part], depth + 1
            else:
                break
        if depth > best_depth:
            best, best_depth = path, depth
    return best

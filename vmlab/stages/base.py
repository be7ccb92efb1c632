"""What a stage is: a name, install(c, env), verify(c, env) and whether it reboots.

A stage function receives only a context ``c`` (run commands, write files) and the
stage environment ``env`` (the profile, the lab's secrets, templates), so the same code
runs over SSH, against a plan recorder, or against a test double.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from vmlab.errors import ProfileError, UsageError
from vmlab.rendering import templates
from vmlab.profile import OpenStack, Profile

if TYPE_CHECKING:
    from vmlab.platforms import Distro, Release
    from vmlab.platforms.steps import Step


class CommandResult(Protocol):
    exit_code: int
    stdout: str
    stderr: str


class Context(Protocol):
    """The part of a remote session a stage may use."""

    def run(self, command: str, *, check: bool = True, env: Mapping[str, str] | None = None,
            input: str | None = None, timeout: float | None = None,
            hide: bool = False) -> CommandResult: ...

    def put(self, content: str | bytes, path: str, mode: int = 0o644) -> None: ...

    def upload(self, local_path: str, path: str, mode: int = 0o644) -> None: ...

    def exists(self, path: str) -> bool: ...


#: The install manual's nodes besides the controller; an all-in-one's hosts file maps
#: each to the controller's management address.
ALL_IN_ONE_HOSTS = ("compute1", "block1", "object1", "object2")

_templates = templates  # the stages' template environment (secretio's filters included)


@dataclass(frozen=True)
class StageEnv:
    """Everything a stage may know about the lab it runs in."""

    lab: str
    profile: Profile
    secrets: Mapping[str, str] = field(default_factory=dict)
    host_files: Mapping[str, str] = field(default_factory=dict)

    @property
    def hostname(self) -> str:
        return self.profile.vm.hostname

    @property
    def management_address(self) -> str:
        nic = self.profile.vm.nic("management") or self.profile.vm.nic("provider")
        assert nic is not None  # the profile model requires a provider NIC
        if nic.address is None:
            raise ValueError(f"the {nic.role} NIC has no static address in the profile")
        return str(nic.address)

    @property
    def nics(self) -> list[dict[str, Any]]:
        """The VM's NICs as the templates use them (role, mac, address, prefix, ...)."""
        return [{"role": nic.role, "mac": nic.mac_for(self.lab),
                 "address": str(nic.address) if nic.address else None,
                 "prefix": nic.prefix, "netmask": str(nic.subnet.netmask),
                 "subnet": str(nic.subnet),
                 "gateway": str(nic.gateway) if nic.gateway else None}
                for nic in self.profile.vm.nics]

    @property
    def other_hosts(self) -> list[tuple[str, str]]:
        """(name, address) of the manual's other nodes for /etc/hosts: the profile's
        openstack.hosts, or all on the controller's management address (an all-in-one)."""
        hosts = self.profile.openstack.hosts
        if hosts is not None:
            return [(name, str(address)) for name, address in hosts.items()]
        return [(name, self.management_address) for name in ALL_IN_ONE_HOSTS]

    @property
    def dns(self) -> list[str] | None:
        """The guest's name servers (vmlab.dns); None: those of the provider's DHCP lease."""
        from vmlab.dns import guest_dns

        servers = guest_dns(self.profile)
        return None if servers is None else [str(server) for server in servers]

    @property
    def management_subnet(self) -> str:
        nic = self.profile.vm.nic("management") or self.profile.vm.nic("provider")
        assert nic is not None
        return str(nic.subnet)

    @property
    def distro(self) -> "Distro":
        """The guest's distribution (the profile's ``platform``)."""
        from vmlab.platforms import distro

        return distro(self.profile.platform)

    @property
    def release(self) -> "Release":
        """The OpenStack release the stages deploy (the profile's ``openstack.release``)."""
        from vmlab.platforms import release

        return release(self.profile.openstack.release)

    @property
    def openstack(self) -> "OpenStack":
        return self.profile.openstack

    def secret(self, name: str) -> str:
        """A generated secret of the lab; the profile must list it under `secrets:`."""
        try:
            return self.secrets[name]
        except KeyError:
            raise ProfileError(f"the stages need a secret {name!r} that the profile does not "
                               "generate", hint=f"add {name!r} to the profile's `secrets:` "
                               "list") from None

    def host_file(self, name: str) -> str:
        """A file vmlab prepared on the host for this stage (e.g. the Glance test image)."""
        try:
            return self.host_files[name]
        except KeyError:
            raise UsageError(f"host file {name!r} was not prepared for this stage",
                             hint="declare it in the Stage's host_files") from None

    def render(self, template: str, **values: Any) -> str:
        """Render ``vmlab/templates/<template>`` with ``env`` and ``values``."""
        return _templates.get_template(template).render(env=self, **values)


def apply(c: Context, env: StageEnv, steps: "list[Step]") -> None:
    """Carry out steps a distribution's method handed back (vmlab.platforms.steps), in
    order: commands run, templates rendered and written."""
    from vmlab.platforms.steps import Put

    for step in steps:
        if isinstance(step, Put):
            content = (step.content if step.template is None
                       else env.render(step.template, **step.values))
            assert content is not None
            c.put(content, step.path, mode=step.mode)
        else:
            c.run(step.command, input=None if step.input_template is None
                  else env.render(step.input_template))


StageFn = Callable[[Context, StageEnv], None]


def _nothing(c: Context, env: StageEnv) -> None:
    return None


@dataclass(frozen=True)
class Stage:
    name: str
    install: StageFn
    verify: StageFn = _nothing
    reboot: bool = False
    description: str = ""
    #: Files vmlab prepares on the host before the stage runs (see vmlab.hostfiles).
    host_files: tuple[str, ...] = ()

"""A distribution as the stages see it: package, service and path names by role, its
package manager, how its NICs are configured and where its OpenStack packages come from.
The records are in ``vmlab.platforms.tables``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from vmlab.platforms.packaging import PackageManager, Yum
from vmlab.platforms.roles import File, Pkg, Svc, Tpl
from vmlab.platforms.steps import Put, Run, Step

IFCFG = "/etc/sysconfig/network-scripts"


class NetworkConfig:
    """How a distribution gets the profile's NICs configured."""

    def steps(self, nic: Mapping[str, Any]) -> list[Step]:
        """What the network stage does for ``nic`` (StageEnv.nics' form)."""
        raise NotImplementedError


@dataclass(frozen=True)
class SeededAtBoot(NetworkConfig):
    """vmlab's guest image configures every NIC by MAC at each boot (vmlab.image's seed);
    the network stage writes nothing for them and checks the result."""

    def steps(self, nic: Mapping[str, Any]) -> list[Step]:
        return []


@dataclass(frozen=True)
class IfcfgFiles(NetworkConfig):
    """One network-scripts ifcfg file per NIC, matched by MAC: the manual's
    eno16777736/eno33554984 names depend on the hypervisor."""

    template: str = "openstack/ifcfg.j2"

    def steps(self, nic: Mapping[str, Any]) -> list[Step]:
        return [Run(remove_other_ifcfg(nic["mac"], nic["role"])),
                Put(f"{IFCFG}/ifcfg-{nic['role']}", template=self.template,
                    values={"nic": nic})]


def remove_other_ifcfg(mac: str, role: str) -> str:
    """Remove every ifcfg file but vmlab's for the NIC with ``mac``: the one named after its
    device, and any whose DEVICE, NAME or HWADDR names it. Anaconda writes ifcfg-<device>
    with DEVICE= and NAME= but usually no HWADDR=; left in place, it is a second profile
    for the same NIC (NetworkManager activates either)."""
    return (f"dev=$(grep -l -i -x '{mac}' /sys/class/net/*/address | head -n 1); "
            "dev=${dev%/address}; dev=${dev##*/}; "
            f"[ -n \"$dev\" ] || {{ echo 'no NIC has MAC {mac}' >&2; exit 1; }}; "
            f"for f in {IFCFG}/ifcfg-*; do "
            f"[ \"$f\" = {IFCFG}/ifcfg-{role} ] && continue; "
            f"if [ \"$f\" = \"{IFCFG}/ifcfg-$dev\" ] || grep -q -i -E "
            f"\"^(DEVICE|NAME)=[\\\"']?$dev[\\\"']?\\$|^HWADDR=[\\\"']?{mac}\" \"$f\"; "
            "then rm -f \"$f\"; fi; done")


class OpenStackRepos:
    """Where a distribution's OpenStack packages come from."""

    def steps(self, distro: "Distro", release: str) -> list[Step]:
        """Make the packages of OpenStack ``release`` installable."""
        raise NotImplementedError


@dataclass(frozen=True)
class OwnArchive(OpenStackRepos):
    """The distribution's own archive packages the release: nothing to add."""

    def steps(self, distro: "Distro", release: str) -> list[Step]:
        return []


@dataclass(frozen=True)
class SigReleasePackage(OpenStackRepos):
    """A release package (CentOS's centos-release-openstack-*) adds the repositories.

    Erratum: the release package's mirrorlists no longer resolve. The release package comes
    from the extras of the release that shipped it, with the release's own repository
    disabled: the package lives there too, but that repository's key
    (RPM-GPG-KEY-CentOS-SIG-Cloud) is on disk only once the package is installed. Its repo
    files, and those of the SIG packages it requires, point at mirror.centos.org and are
    disabled in place; vmlab's own file (``template``) points at the vault."""

    template: str
    path: str

    def steps(self, distro: "Distro", release: str) -> list[Step]:
        packaging = distro.packaging
        if not isinstance(packaging, Yum):
            raise ValueError(f"{distro.name}: a release package needs yum")
        return [Put(self.path, template=self.template),
                Run(packaging.install(distro.packages[Pkg.OPENSTACK_RELEASE],
                                      disable_repos=(f"vmlab-openstack-{release}",))),
                *packaging.settle()]


@dataclass(frozen=True)
class Distro:
    """One guest distribution (the profile's ``platform:``)."""

    name: str
    title: str
    #: the Debian suite an image is built from; None for a distribution installed otherwise
    codename: str | None
    packaging: PackageManager
    packages: Mapping[Pkg, tuple[str, ...]]
    services: Mapping[Svc, str]
    paths: Mapping[File, str]
    templates: Mapping[Tpl, str]
    network: NetworkConfig
    openstack_repos: OpenStackRepos
    #: how vmlab installs it (profile install.method values)
    install_methods: tuple[str, ...]
    #: the OpenStack releases it packages (vmlab.platforms.releases); the first is the default
    releases: tuple[str, ...]
    #: role -> answers to its packages' install-time questions (a template), given first
    preseeds: Mapping[Pkg, str] = field(default_factory=dict)
    has_selinux: bool = False
    has_firewalld: bool = False
    #: whether the keystone package ships the manual's Apache site (CentOS's
    #: wsgi-keystone.conf); where it does not, the stage writes it from the same text
    keystone_site_shipped: bool = True
    #: the interpreter of the distribution's openstack client (it runs the client
    #: in-process to hand it a password from the environment)
    python: str = "python3"
    #: whether rabbitmqctl reads a password from stdin when none is given (its Elixir CLI,
    #: RabbitMQ 3.8 on); the older one takes it only as an argument
    rabbitmqctl_reads_password: bool = True

    def _lookup(self, table: Mapping[Any, Any], role: Any, what: str) -> Any:
        try:
            return table[role]
        except KeyError:
            raise KeyError(f"{self.title} has no {what} for {role.value!r} in vmlab's "
                           "distribution table") from None

    def install(self, *roles: Pkg) -> str:
        """The command that installs the packages of ``roles``."""
        names: list[str] = []
        for role in roles:
            names.extend(self._lookup(self.packages, role, "packages"))
        return self.packaging.install(names)

    def preseed(self, role: Pkg) -> list[Step]:
        """Answers to the install-time questions of ``role``'s packages, if they ask any."""
        template = self.preseeds.get(role)
        return [] if template is None else self.packaging.preseed(template)

    def installed(self, role: Pkg) -> str:
        """A command that fails unless the packages of ``role`` are installed."""
        return self.packaging.installed(self._lookup(self.packages, role, "packages"))

    def service(self, role: Svc) -> str:
        return str(self._lookup(self.services, role, "service"))

    def has_service(self, role: Svc) -> bool:
        return role in self.services

    def enable_and_start(self, *roles: Svc) -> str:
        units = " ".join(self.service(role) for role in roles)
        return f"systemctl enable {units} && systemctl restart {units}"

    def path(self, role: File) -> str:
        return str(self._lookup(self.paths, role, "file"))

    def template(self, role: Tpl) -> str:
        return str(self._lookup(self.templates, role, "template"))

    def supports(self, release: str) -> bool:
        return release in self.releases

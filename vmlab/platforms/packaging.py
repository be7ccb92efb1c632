"""Package managers: the commands that install, upgrade and refresh packages, and how a
guest is pointed at its mirrors. A distribution holds one (``Distro.packaging``)."""
from __future__ import annotations

import shlex
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Mapping

from vmlab.platforms.steps import Put, Run, Step


class PackageManager(ABC):
    """What the stages ask of a distribution's package manager."""

    @abstractmethod
    def install(self, names: tuple[str, ...] | list[str],
                disable_repos: tuple[str, ...] = ()) -> str:
        """The command that installs ``names`` (without the repositories
        ``disable_repos`` for this one command, where the manager can)."""

    @abstractmethod
    def refresh(self) -> str:
        """The command that reads the repositories' indexes again."""

    @abstractmethod
    def upgrade(self) -> list[Step]:
        """Upgrade every package (and whatever must follow an upgrade)."""

    @abstractmethod
    def use_mirrors(self, proxy: str | None) -> list[Step]:
        """Point the guest at vmlab's mirrors (through ``proxy`` when given)."""

    @abstractmethod
    def verify_repos(self) -> list[str]:
        """Commands that fail while the guest would reach a repository vmlab did not set."""

    @abstractmethod
    def installed(self, names: tuple[str, ...] | list[str]) -> str:
        """A command that fails unless every package of ``names`` is installed."""

    def preseed(self, template: str) -> list[Step]:
        """Answer a package's install-time questions (``template``, rendered) beforehand."""
        raise ValueError(f"{type(self).__name__} has no install-time questions to answer")


def _words(names: tuple[str, ...] | list[str]) -> str:
    return " ".join(shlex.quote(n) for n in names)


@dataclass(frozen=True)
class Yum(PackageManager):
    """yum with the distribution's stock repositories disabled in place and vmlab's own
    repository file (``mirror_template``) pointing at a mirror that still answers."""

    mirror_template: str
    mirror_path: str = "/etc/yum.repos.d/vmlab-base.repo"
    #: the repo files of the release packages: centos-release (CentOS-Base.repo, ...) and
    #: the SIGs' (CentOS-OpenStack-newton.repo, CentOS-Ceph-Jewel.repo, CentOS-QEMU-EV.repo)
    stock_repos: str = "/etc/yum.repos.d/CentOS-*.repo"
    #: yum's variables in repo URLs, as the guest expands them (preflight checks the URLs)
    repo_variables: Mapping[str, str] = field(default_factory=dict)

    def install(self, names: tuple[str, ...] | list[str],
                disable_repos: tuple[str, ...] = ()) -> str:
        options = "".join(f" --disablerepo={shlex.quote(r)}" for r in disable_repos)
        return f"yum -y -q{options} install {_words(names)}"

    def refresh(self) -> str:
        return "yum -q makecache"

    def upgrade(self) -> list[Step]:
        # The upgrade updates the release packages; a repo file one adds is disabled too.
        return [Run("yum -y -q upgrade"), Run(self.disable_stock_repos())]

    def use_mirrors(self, proxy: str | None) -> list[Step]:
        # Erratum: the manual's CentOS mirrors are gone; the vault (or the manual's aliyun
        # mirror, or a custom one) replaces the stock mirrorlist entries, which are disabled
        # in place so that no package upgrade brings them back.
        steps: list[Step] = [Run(self.disable_stock_repos()),
                             Put(self.mirror_path, template=self.mirror_template)]
        if proxy:
            steps.append(Run(f"grep -q '^proxy=' /etc/yum.conf || echo 'proxy={proxy}' "
                             ">> /etc/yum.conf"))
        return steps + [Run("yum clean all")]

    def settle(self) -> list[Step]:
        """After a package added repo files: disable them, forget what yum cached."""
        return [Run(self.disable_stock_repos()), Run("yum clean all")]

    def verify_repos(self) -> list[str]:
        return [self.only_vmlab_repos()]

    def installed(self, names: tuple[str, ...] | list[str]) -> str:
        return f"rpm -q {_words(names)} >/dev/null"

    def disable_stock_repos(self) -> str:
        """Disable every section of the stock repo files in place, their URLs commented out.

        rpm owns these files as %config(noreplace): one edited in place stays as it is when
        its package is upgraded (the package's new version is written as .rpmnew), while one
        that was moved away or deleted is put back, its dead mirrorlist enabled again.
        Idempotent.
        """
        return (f"for f in {self.stock_repos}; do [ -e \"$f\" ] || continue; "
                "sed -i -e '/^[[:space:]]*enabled[[:space:]]*=/d' "
                "-e 's/^[[:space:]]*\\(mirrorlist\\|baseurl\\)[[:space:]]*=/#vmlab-disabled: &/' "
                "-e 's/^\\[[^]]*\\]/&\\nenabled=0/' \"$f\"; done")

    @staticmethod
    def only_vmlab_repos() -> str:
        """Fails when a repo file other than vmlab's still names a URL (an enabled stock
        repo)."""
        return ("! grep -E -l '^[[:space:]]*(mirrorlist|baseurl)[[:space:]]*=' "
                "$(ls /etc/yum.repos.d/*.repo | grep -v '/vmlab-') /dev/null")


APT_ENV = "DEBIAN_FRONTEND=noninteractive"


@dataclass(frozen=True)
class Apt(PackageManager):
    """apt-get without recommended packages (Glance's do not fit a small disk), keeping
    the configuration files vmlab wrote; the guest's sources from ``sources_template``."""

    sources_template: str
    sources_path: str = "/etc/apt/sources.list"

    def install(self, names: tuple[str, ...] | list[str],
                disable_repos: tuple[str, ...] = ()) -> str:
        if disable_repos:
            raise ValueError("apt cannot leave a repository out of one install")
        return (f"{APT_ENV} apt-get -q -y --no-install-recommends "
                f"-o Dpkg::Options::=--force-confold install {_words(names)}")

    def refresh(self) -> str:
        return f"{APT_ENV} apt-get -q -y update"

    def upgrade(self) -> list[Step]:
        return [Run(f"{APT_ENV} apt-get -q -y upgrade")]

    def use_mirrors(self, proxy: str | None) -> list[Step]:
        steps: list[Step] = [Put(self.sources_path, template=self.sources_template)]
        if proxy:
            steps.append(Put("/etc/apt/apt.conf.d/80proxy",
                             content=f'Acquire::http::Proxy "{proxy}";\n'))
        return steps

    def verify_repos(self) -> list[str]:
        return []

    def installed(self, names: tuple[str, ...] | list[str]) -> str:
        return " && ".join(f"dpkg-query -W -f='${{Status}}' {shlex.quote(n)} | "
                           "grep -q 'install ok installed'" for n in names)

    def preseed(self, template: str) -> list[Step]:
        return [Run("debconf-set-selections", input_template=template)]

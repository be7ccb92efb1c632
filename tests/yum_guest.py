"""A CentOS 7 guest's /etc/yum.repos.d in a folder, for running a stage's plan against it.

Commands that edit the repo folder run in bash with the folder's path put in; yum commands
are modelled: each one that reaches the network checks every enabled repository (a
mirrorlist or mirror.centos.org no longer resolves: yum fails) and the GPG key of each
(yum refuses a package from a repository whose key file is missing); `yum upgrade` updates
centos-release and `yum install centos-release-openstack-newton` installs the Cloud SIG's
release package and the two it requires, the way rpm installs %config(noreplace) files: a
missing file is (re)created, a file edited in place is kept and the package's version
written next to it as .rpmnew.

The repo files are the packages' own, abridged to what matters here (ids, URLs, enabled,
gpgkey): centos-release 7-9.2009 (CentOS-Base.repo and friends), rdo-infra's
centos-release-openstack (CentOS-OpenStack.repo, newton), the CentOS Storage SIG's
centos-release-ceph-jewel (CentOS-Ceph-Jewel.repo) and the Virtualization SIG's
centos-release-qemu-ev (CentOS-QEMU-EV.repo).
"""
from __future__ import annotations

import configparser
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPOS = "/etc/yum.repos.d"
KEYS = "/etc/pki/rpm-gpg"

CENTOS_BASE = """\
# CentOS-Base.repo
[base]
name=CentOS-$releasever - Base
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=os&infra=$infra
#baseurl=http://mirror.centos.org/centos/$releasever/os/$basearch/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[updates]
name=CentOS-$releasever - Updates
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=updates&infra=$infra
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[extras]
name=CentOS-$releasever - Extras
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=extras&infra=$infra
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7

[centosplus]
name=CentOS-$releasever - Plus
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=centosplus&infra=$infra
gpgcheck=1
enabled=0
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-7
"""

CENTOS_RELEASE_2009_0 = {
    "CentOS-Base.repo": CENTOS_BASE,
    "CentOS-CR.repo": "[cr]\nname=CentOS-$releasever - cr\n"
                      "baseurl=http://mirror.centos.org/centos/$releasever/cr/$basearch/\n"
                      "gpgcheck=1\nenabled=0\n",
    "CentOS-fasttrack.repo": "[fasttrack]\nname=CentOS-7 - fasttrack\nmirrorlist=http://"
                             "mirrorlist.centos.org/?release=$releasever&arch=$basearch&"
                             "repo=fasttrack&infra=$infra\ngpgcheck=1\nenabled=0\n",
    "CentOS-Media.repo": "[c7-media]\nname=CentOS-$releasever - Media\n"
                         "baseurl=file:///media/CentOS/\ngpgcheck=1\nenabled=0\n",
    "CentOS-Vault.repo": "[C7.8.2003-base]\nname=CentOS-7.8.2003 - Base\n"
                         "baseurl=http://vault.centos.org/7.8.2003/os/$basearch/\n"
                         "gpgcheck=1\nenabled=0\n",
}
#: centos-release 7-9.2009.1 (7.9.2009/updates): CentOS-Base.repo's comments changed and
#: a repo file for the kernel SIG was added.
CENTOS_RELEASE_2009_1 = {
    **CENTOS_RELEASE_2009_0,
    "CentOS-Base.repo": CENTOS_BASE.replace("# CentOS-Base.repo", "# CentOS-Base.repo (7.9.2009.1)"),
    "CentOS-x86_64-kernel.repo": "[centos-kernel]\nname=CentOS LTS Kernels for $basearch\n"
                                 "mirrorlist=http://mirrorlist.centos.org/?release=$releasever"
                                 "&arch=$basearch&repo=kernel&infra=$infra\nenabled=0\n"
                                 "gpgcheck=1\n",
}
OPENSTACK_NEWTON = """\
[centos-openstack-newton]
name=CentOS-7 - OpenStack newton
mirrorlist=http://mirrorlist.centos.org/?release=$releasever&arch=$basearch&repo=cloud-openstack-newton
gpgcheck=1
enabled=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Cloud
exclude=sip,PyQt4

[centos-openstack-newton-test]
name=CentOS-7 - OpenStack newton Testing
baseurl=https://buildlogs.centos.org/centos/$releasever/cloud/$basearch/openstack-newton/
gpgcheck=0
enabled=0
"""
CEPH_JEWEL = """\
[centos-ceph-jewel]
name=CentOS-$releasever - Ceph Jewel
baseurl=http://mirror.centos.org/centos/$releasever/storage/$basearch/ceph-jewel/
gpgcheck=1
enabled=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Storage
"""
QEMU_EV = """\
[centos-qemu-ev]
name=CentOS-$releasever - QEMU EV
baseurl=http://mirror.centos.org/centos/$releasever/virt/$basearch/kvm-common/
gpgcheck=1
enabled=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-CentOS-SIG-Virtualization
"""
#: what `yum install centos-release-openstack-newton` puts on disk (the package requires
#: centos-release-ceph-jewel and centos-release-qemu-ev, which bring the other two and the
#: storage-common and virt-common packages with their keys)
NEWTON_RELEASE_FILES = {"CentOS-OpenStack-newton.repo": OPENSTACK_NEWTON,
                        "CentOS-Ceph-Jewel.repo": CEPH_JEWEL, "CentOS-QEMU-EV.repo": QEMU_EV}
NEWTON_RELEASE_KEYS = ("RPM-GPG-KEY-CentOS-SIG-Cloud", "RPM-GPG-KEY-CentOS-SIG-Storage",
                       "RPM-GPG-KEY-CentOS-SIG-Virtualization")


class YumFailed(AssertionError):
    """What the real yum would have stopped at."""


@dataclass
class YumGuest:
    root: Path
    #: file name -> the content the installed package shipped (rpm's view of the file)
    shipped: dict[str, str] = field(default_factory=dict)
    #: the enabled repository ids at each `yum install` of the release package
    release_installed_with: list[set[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.repos.mkdir(parents=True, exist_ok=True)
        self.keys.mkdir(parents=True, exist_ok=True)
        (self.keys / "RPM-GPG-KEY-CentOS-7").write_text("key\n")
        self.rpm_install(CENTOS_RELEASE_2009_0)

    @property
    def repos(self) -> Path:
        return self.root / REPOS.lstrip("/")

    @property
    def keys(self) -> Path:
        return self.root / KEYS.lstrip("/")

    # -- rpm ------------------------------------------------------------------------------

    def rpm_install(self, files: dict[str, str]) -> None:
        """Install or upgrade a package whose files are %config(noreplace)."""
        for name, content in files.items():
            path, old = self.repos / name, self.shipped.get(name)
            if not path.exists() or old is None or path.read_text() == old:
                path.write_text(content)
            elif content != old:
                (self.repos / f"{name}.rpmnew").write_text(content)
            self.shipped[name] = content

    # -- yum's view -----------------------------------------------------------------------

    def repositories(self) -> dict[str, configparser.SectionProxy]:
        found: dict[str, configparser.SectionProxy] = {}
        for path in sorted(self.repos.glob("*.repo")):
            parser = configparser.ConfigParser(interpolation=None, strict=False)
            parser.read_string(path.read_text(), source=str(path))
            found.update({name: parser[name] for name in parser.sections()})
        return found

    def enabled(self, disabled: tuple[str, ...] = ()) -> dict[str, configparser.SectionProxy]:
        return {name: repo for name, repo in self.repositories().items()
                if repo.get("enabled", "1").strip() in ("1", "yes", "true", "True")
                and name not in disabled}

    def _reach(self, command: str, disabled: tuple[str, ...]) -> dict:
        enabled = self.enabled(disabled)
        for name, repo in enabled.items():
            if "mirrorlist" in repo:
                raise YumFailed(f"{command!r}: repository {name} has mirrorlist "
                                f"{repo['mirrorlist']} (Could not resolve host: "
                                "mirrorlist.centos.org)")
            if "baseurl" not in repo:
                raise YumFailed(f"{command!r}: repository {name} is enabled without a URL")
            if "mirror.centos.org" in repo["baseurl"]:
                raise YumFailed(f"{command!r}: repository {name} points at "
                                f"{repo['baseurl']} (mirror.centos.org is gone)")
        return enabled

    def _check_keys(self, command: str, enabled: dict) -> None:
        for name, repo in enabled.items():
            if repo.get("gpgcheck", "1").strip() != "0":
                key = repo.get("gpgkey", "").split("file://")[-1].strip()
                if not key or not (self.root / key.lstrip("/")).is_file():
                    raise YumFailed(f"{command!r}: the GPG key {key or '(none)'} of "
                                    f"repository {name} is not on disk")

    # -- a stage's steps ------------------------------------------------------------------

    def put(self, path: str, content: str) -> None:
        if path.startswith(REPOS + "/"):
            (self.repos / path[len(REPOS) + 1:]).write_text(content)

    def run(self, command: str) -> int:
        words = shlex.split(command) if command.startswith("yum ") else []
        if words:
            return self._yum(command, words)
        if REPOS in command:
            shell = command.replace(REPOS, str(self.repos))
            return subprocess.run(["bash", "-c", shell], capture_output=True).returncode
        return 0

    def _yum(self, command: str, words: list[str]) -> int:
        disabled = tuple(w.split("=", 1)[1] for w in words if w.startswith("--disablerepo="))
        action = [w for w in words[1:] if not w.startswith("-")]
        if action[:1] == ["clean"]:
            return 0
        enabled = self._reach(command, disabled)
        if action[:1] == ["upgrade"]:
            self._check_keys(command, enabled)
            self.rpm_install(CENTOS_RELEASE_2009_1)
        elif action[:1] == ["install"]:
            self._check_keys(command, enabled)
            if "centos-release-openstack-newton" in action:
                self.release_installed_with.append(set(enabled))
                self.rpm_install(NEWTON_RELEASE_FILES)
                for key in NEWTON_RELEASE_KEYS:
                    (self.keys / key).write_text("key\n")
        return 0

    def run_steps(self, steps: list[dict]) -> list[tuple[str, int]]:
        """Run a plan's steps in order; (command, exit status) of each command run."""
        statuses = []
        for step in steps:
            if "write" in step:
                self.put(step["write"], step["content"])
            elif "run" in step:
                statuses.append((step["run"], self.run(step["run"])))
        return statuses

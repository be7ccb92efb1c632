"""A profile's `install:` section: how the OS gets on the lab's disk (a Debian image built
from packages, or an installer fed a served kickstart or preseed)."""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import Field

from vmlab.platforms import DISTROS
from vmlab.profiletypes import DebianPackage, Int, KickstartPackage, Strict

#: The Debian suites an image can be built from: those of the table's distributions.
IMAGE_SUITES = {d.codename: d.name for d in DISTROS.values()
                if d.codename is not None and "image" in d.install_methods}
SuiteName = Literal[tuple(IMAGE_SUITES)]  # type: ignore[valid-type]
#: The Debian suites debian-installer installs: codename -> Debian's version number (its
#: netboot images come in the package debian-installer-<number>-netboot-amd64).
PRESEED_SUITES = {d.codename: d.name.removeprefix("debian") for d in DISTROS.values()
                  if d.codename is not None and "preseed" in d.install_methods}
PreseedSuite = Literal[tuple(PRESEED_SUITES)]  # type: ignore[valid-type]


class ImageInstall(Strict):
    """Build the guest disk from Debian packages (mmdebstrap) and boot its kernel directly."""

    method: Literal["image"]
    suite: SuiteName = "bookworm"
    packages: tuple[DebianPackage, ...] = ()
    mirror: str | None = None


class KickstartInstall(Strict):
    """Install from the distribution's ISO with a served kickstart (CentOS 7)."""

    method: Literal["kickstart"]
    template: str = "centos7.ks.j2"
    iso_url: str = "https://vault.centos.org/7.9.2009/isos/x86_64/CentOS-7-x86_64-Minimal-2009.iso"
    iso_sha256: str = Field("07b94e6b1a0b0260b94c83d6bb76b26bf7a310dc78d7a9c7432809fb9bc6194a",
                            pattern=r"^[0-9a-f]{64}$")
    #: The install tree the kickstart's `url` command points at.
    install_url: str = "http://vault.centos.org/7.9.2009/os/x86_64/"
    #: The ISO's volume label, for anaconda's inst.stage2 when the ISO is a CD-ROM.
    iso_label: str = "CentOS 7 x86_64"
    timezone: str = "UTC"
    packages: tuple[KickstartPackage, ...] = ()
    #: Address the install server listens on; default: what the provider network reaches.
    serve_on: ipaddress.IPv4Address | None = None
    install_timeout_minutes: Int = Field(90, ge=5)


class PreseedInstall(Strict):
    """Install Debian with debian-installer's netboot kernel and initrd and a served
    preseed (the kickstart path's machinery: install server, kernel boot, callback)."""

    method: Literal["preseed"]
    template: str = "debian.preseed.j2"
    #: Where the installer's ``linux`` and ``initrd.gz`` are; default: where Debian's
    #: debian-installer-<number>-netboot-amd64 package of the suite installs them.
    netboot_dir: Path | None = None
    suite: PreseedSuite = "bookworm"
    #: The Debian mirror the installer and the installed system use (host, then path).
    mirror_host: str = Field("deb.debian.org", pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$")
    mirror_directory: str = Field("/debian", pattern=r"^/[A-Za-z0-9._/-]*$")
    timezone: str = Field("UTC", pattern=r"^[A-Za-z0-9_+/-]+$")
    packages: tuple[DebianPackage, ...] = ()
    #: Address the install server listens on; default: what the provider network reaches.
    serve_on: ipaddress.IPv4Address | None = None
    install_timeout_minutes: Int = Field(150, ge=5)

    @property
    def netboot_package(self) -> str:
        return f"debian-installer-{PRESEED_SUITES[self.suite]}-netboot-amd64"

    @property
    def netboot_folder(self) -> Path:
        if self.netboot_dir is not None:
            return self.netboot_dir
        return Path(f"/usr/lib/debian-installer/images/{PRESEED_SUITES[self.suite]}/amd64/"
                    "text/debian-installer/amd64")


Install = Annotated[Union[ImageInstall, KickstartInstall, PreseedInstall],
                    Field(discriminator="method")]
#: The install methods whose installer fetches its answers from vmlab's install server.
SERVED_INSTALLS = (KickstartInstall, PreseedInstall)

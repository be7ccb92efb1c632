"""Preseed files for debian-installer: rendered per lab from kickstart/*.preseed.j2, with a
late script beside them, both checked before any VM boots.

The preseed is checked with ``debconf-set-selections --checkonly`` (the parser the installer
itself uses for preseed files: any error or warning, such as an unknown type, is fatal);
the late script with ``sh -n``. The root password is written only as a SHA-512 crypt hash.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import jinja2

from vmlab.errors import KickstartError
from vmlab.kickstart import hash_password
from vmlab.paths import kickstart_templates_dir
from vmlab.redaction import MASK, mask_lines

#: The late script's template, beside the preseed's: ``<distro>-late.sh.j2``.
LATE_SUFFIX = "-late.sh.j2"


@dataclass(frozen=True)
class PreseedNic:
    role: str
    mac: str
    #: None: DHCP
    address: str | None = None
    prefix: int = 24
    gateway: str | None = None


@dataclass(frozen=True)
class PreseedInputs:
    lab: str
    hostname: str
    nics: tuple[PreseedNic, ...]
    root_password: str
    ssh_public_key: str
    #: The URL the installer fetches the late script from (the install server's).
    late_url: str
    done_url: str | None = None
    dns: tuple[str, ...] = ()
    domain: str = "localdomain"
    mirror_host: str = "deb.debian.org"
    mirror_directory: str = "/debian"
    suite: str = "bookworm"
    timezone: str = "UTC"
    packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rendered:
    preseed: str
    late_script: str


def late_template(template: str) -> str:
    """``debian.preseed.j2`` -> ``debian-late.sh.j2``."""
    return template.split(".", 1)[0] + LATE_SUFFIX


def render_preseed(inputs: PreseedInputs, template: str = "debian.preseed.j2",
                   salt: str | None = None) -> Rendered:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(kickstart_templates_dir())),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False,
        trim_blocks=True, lstrip_blocks=True)
    for nic in inputs.nics:
        if nic.address is not None:
            ipaddress.IPv4Address(nic.address)  # never anything but an address in the script
    values = {**inputs.__dict__, "root_password_hash": hash_password(inputs.root_password, salt)}
    texts = []
    for name in (template, late_template(template)):
        try:
            texts.append(environment.get_template(name).render(**values))
        except jinja2.TemplateError as exc:
            raise KickstartError(f"preseed template {name}: {exc}",
                                 hint=f"check {kickstart_templates_dir() / name}") from exc
    return Rendered(preseed=texts[0], late_script=texts[1])


def validate_preseed(rendered: Rendered) -> None:
    """debconf-set-selections --checkonly on the preseed, sh -n on the late script."""
    _require("debconf-set-selections", "debconf")
    problems = []
    for line in rendered.preseed.splitlines():
        if line.startswith("d-i ") and line.rstrip().endswith("\\"):
            problems.append("a value continued on the next line (a trailing backslash): "
                            "keep each answer on one line")
    with tempfile.TemporaryDirectory(prefix="vmlab-preseed-") as tmp:
        os.chmod(tmp, 0o700)
        preseed = Path(tmp) / "preseed.cfg"
        preseed.write_text(rendered.preseed)
        late = Path(tmp) / "late.sh"
        late.write_text(rendered.late_script)
        for argv, what in ((["debconf-set-selections", "--checkonly", str(preseed)],
                            "the preseed"),
                           (["sh", "-n", str(late)], "the late script")):
            result = subprocess.run(argv, capture_output=True, text=True,
                                    stdin=subprocess.DEVNULL, timeout=60)
            output = result.stderr.replace(str(preseed), "preseed.cfg").replace(
                str(late), "late.sh").strip()
            if result.returncode != 0 or output:
                problems.append(f"{what}: {output or f'exit status {result.returncode}'}")
    if problems:
        raise KickstartError("the preseed is not valid: " + "; ".join(problems),
                             hint="fix the preseed template or the profile values it uses")


def _require(program: str, package: str) -> None:
    if shutil.which(program) is None:
        raise KickstartError(f"{program} is not installed; vmlab checks preseed files with it",
                             hint=f"install Debian's {package} package")


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """The preseed with the root password hash and every secret masked."""
    return mask_lines(text, secrets, "d-i passwd/root-password-crypted ",
                      f"d-i passwd/root-password-crypted password {MASK}\n")

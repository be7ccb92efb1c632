"""Kickstart files: rendered per lab from kickstart/*.ks.j2, validated with pykickstart.

The root password is written only as a SHA-512 crypt hash; `mask_secrets` hides the hash
and any secret when a kickstart is printed.
"""
from __future__ import annotations

import ipaddress
import warnings
from dataclasses import dataclass
from typing import Iterable

import jinja2
from passlib.hash import sha512_crypt

from vmlab.errors import KickstartError
from vmlab.paths import kickstart_templates_dir
from vmlab.redaction import MASK, mask_lines


@dataclass(frozen=True)
class KickstartInputs:
    lab: str
    hostname: str
    provider_mac: str
    management_mac: str
    management_address: str
    management_prefix: int
    root_password: str
    ssh_public_key: str
    install_url: str
    timezone: str = "UTC"
    packages: tuple[str, ...] = ()
    done_url: str | None = None
    vmware_tools: bool = False
    #: "reboot" when the VM boots from its disk next; "poweroff" after a direct-kernel
    #: install boot, so that vmlab can switch the VM to boot from disk first.
    finish: str = "poweroff"


def hash_password(password: str, salt: str | None = None) -> str:
    """SHA-512 crypt; a fixed ``salt`` only for reproducible output (golden files)."""
    if salt is not None:
        return sha512_crypt.using(salt=salt, rounds=5000).hash(password)
    return sha512_crypt.using(rounds=5000).hash(password)


def render_kickstart(inputs: KickstartInputs, template: str = "centos7.ks.j2",
                     salt: str | None = None) -> str:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(kickstart_templates_dir())),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
    netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{inputs.management_prefix}").netmask)
    values = {**inputs.__dict__, "management_netmask": netmask,
              "root_password_hash": hash_password(inputs.root_password, salt)}
    try:
        return environment.get_template(template).render(**values)
    except jinja2.TemplateError as exc:
        raise KickstartError(f"kickstart template {template}: {exc}",
                             hint=f"check {kickstart_templates_dir() / template}") from exc


def validate_kickstart(text: str, version: str = "RHEL7") -> None:
    """Parse with pykickstart's handler for ``version``; any error or warning is fatal."""
    from pykickstart.errors import KickstartError as ParserError
    from pykickstart.parser import KickstartParser
    from pykickstart.version import makeVersion, stringToVersion

    parser = KickstartParser(makeVersion(stringToVersion(version)), errorsAreFatal=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parser.readKickstartFromString(text)
        except (ParserError, Warning) as exc:
            raise KickstartError(f"the kickstart is not valid for {version}: "
                                 f"{str(exc).strip()}",
                                 hint="fix the kickstart template or the profile values "
                                      "it uses") from exc


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """The kickstart with the root password hash and every secret masked."""
    return mask_lines(text, secrets, "rootpw ",
                      f"rootpw --iscrypted {MASK}\n")

"""The value types a profile's keys take: strict integers and booleans, package names as
their package manager spells them, checksums; and the strict model every section is."""
from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Strict as StrictType

#: An integer key takes an integer only: not `true` (a bool is an int to Python), not 2.0.
Int = Annotated[int, StrictType()]
#: A yes/no key takes true or false only, not 1 or "yes".
Bool = Annotated[bool, StrictType()]

def _debian_package(value: str) -> str:
    # Debian Policy 5.6.1: lower-case letters, digits, '+', '-', '.'; at least two
    # characters, starting with a letter or digit.
    if not re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", value):
        raise ValueError("not a Debian package name (lower-case letters, digits, '+', '-' and "
                         "'.', at least 2 characters, starting with a letter or digit)")
    return value


def _kickstart_package(value: str) -> str:
    # An RPM name (Fedora's naming guidelines: letters, digits, '-', '.', '_', '+'), a
    # comps group as @group or @^environment, either excluded with a leading '-'.
    if not re.fullmatch(r"-?(@\^?)?[A-Za-z0-9][A-Za-z0-9._+-]*", value):
        raise ValueError("not a package name for a kickstart's %packages (an RPM name of "
                         "letters, digits, '-', '.', '_' and '+'; @group; -name to exclude)")
    return value


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise ValueError("expected a sha256 checksum: 64 hexadecimal digits")
    return value.lower()


DebianPackage = Annotated[str, AfterValidator(_debian_package)]
KickstartPackage = Annotated[str, AfterValidator(_kickstart_package)]
Sha256 = Annotated[str, AfterValidator(_sha256)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

"""The grammars of the names vmlab turns into directories and hypervisor objects.

A lab's name becomes a directory under the labs dir, a VM name (``vmlab-<lab>``) and part
of network and volume names; a profile's name is a lab's default name. One pattern serves
both, checked here, so that ``--lab ../..`` or ``name: a/b`` never reaches a path or a
hypervisor. This module imports nothing from vmlab but its errors, so every layer may use it.
"""
from __future__ import annotations

import re

from vmlab.errors import UsageError

#: A lab's or profile's name: lower-case letters, digits and '-', at most 40 characters.
#: Match it with re.fullmatch (or is_lab_name): with re.match, '$' also accepts a final '\n'.
LAB_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,39}$"

#: A hypervisor object vmlab names from a profile (a libvirt network or storage pool): it
#: becomes a file under /etc/libvirt and a bridge or directory name, so no '/', no '..',
#: no spaces or shell characters.
HYPERVISOR_NAME_RE = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,49}$"

#: A vSphere port group: the same, with single spaces inside, since ESXi's own default
#: port group is "VM Network" (vmlab only looks it up, or makes a host-only one by that name).
PORT_GROUP_RE = r"^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)| (?=[A-Za-z0-9_.-])){0,79}$"

#: The snapshot taken after a lab's last stage: no stage may be named so.
COMPLETE = "complete"

_LAB_NAME = re.compile(LAB_NAME_RE)
_HYPERVISOR_NAME = re.compile(HYPERVISOR_NAME_RE)
_PORT_GROUP = re.compile(PORT_GROUP_RE)


class InvalidName(UsageError, ValueError):
    """A name outside its grammar. A ValueError too, so a pydantic validator reports it
    against the key that held the name."""


def is_lab_name(value: object) -> bool:
    return isinstance(value, str) and _LAB_NAME.fullmatch(value) is not None


def check_name(kind: str, value: object) -> str:
    """``value`` if it is a valid lab/profile name; InvalidName (exit 2) saying the rule."""
    if is_lab_name(value):
        return value  # type: ignore[return-value]
    raise InvalidName(
        f"{kind} name {value!r} is not valid: use 1 to 40 lower-case letters, digits and "
        "'-', starting with a letter or digit",
        hint="for example: demo, my-lab, openstack-2")


def check_hypervisor_name(kind: str, value: object) -> str:
    """``value`` if it may name a libvirt network or pool; InvalidName otherwise."""
    if isinstance(value, str) and _HYPERVISOR_NAME.fullmatch(value):
        return value
    raise InvalidName(
        f"{kind} {value!r} is not a safe name: use 1 to 50 letters, digits, '-', '_' and "
        "single '.', starting with a letter or digit (it becomes a hypervisor object name "
        "and a file name)",
        hint="for example: vmlab-management")


def check_port_group(kind: str, value: object) -> str:
    """``value`` if it may name a vSphere port group; InvalidName otherwise."""
    if isinstance(value, str) and _PORT_GROUP.fullmatch(value):
        return value
    raise InvalidName(
        f"{kind} {value!r} is not a safe port group name: use 1 to 80 letters, digits, '-', "
        "'_', single '.' and single spaces, starting with a letter or digit",
        hint="for example: VM Network, vmlab-management")


def check_lab_name(value: object) -> str:
    """``value`` if it is a valid lab name; InvalidName (exit 2) otherwise. Checked wherever
    a lab name comes in (the command line, a path built from it): a name outside the grammar
    could point a path outside vmlab's own directories."""
    if is_lab_name(value):
        return value  # type: ignore[return-value]
    raise InvalidName(f"invalid lab name {value!r}",
                      hint="a lab name is 1 to 40 lower-case letters, digits and '-', "
                           "starting with a letter or digit (e.g. demo, newton-aio)")

"""The grammar of a lab's name, checked wherever a name comes in (the command line, a path
built from it): a name outside it could point a path outside vmlab's own directories."""
from __future__ import annotations

import re

from vmlab.errors import UsageError

LAB_NAME_RE = r"^[a-z0-9][a-z0-9-]{0,39}$"


def check_lab_name(value: str) -> str:
    """``value`` if it is a valid lab name; UsageError (exit 2) otherwise."""
    if not isinstance(value, str) or not re.fullmatch(LAB_NAME_RE, value):
        raise UsageError(f"invalid lab name {value!r}",
                         hint="a lab name is 1 to 40 lower-case letters, digits and '-', "
                              "starting with a letter or digit (e.g. demo, newton-aio)")
    return value

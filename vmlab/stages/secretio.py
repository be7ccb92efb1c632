"""How a secret value reaches the guest: never in a command line, always byte for byte.

Built-in stages hand a secret to a guest command only through the command's environment
or its stdin (the session sends both inside the shell's input stream, so neither is in any
process's argv, i.e. not in `ps`). Where a secret must be written into a file or into SQL,
the format's own quoting is applied here, once, by a template filter:

- ``sql_string``: a MariaDB string literal (backslash and quote escaped; MariaDB's default
  sql_mode has backslash escapes on).
- ``url_password``: a URL's userinfo part (percent-encoded; SQLAlchemy decodes it).
- ``oslo_value``: an oslo.config value (``$`` doubled so it is not substituted; quoted
  when it would lose quotes of its own, which the parser strips around a whole value).
- ``mycnf_value``: a MySQL/MariaDB option-file value (double-quoted, backslash escapes).
- ``pymysql_option_value``: a value in an option file PyMySQL reads (``read_default_file``):
  its parser (configparser, no interpolation) takes the text as it is and strips one pair
  of quotes around it, and no escapes: double-quoted, nothing escaped.
- ``shell_word``: one single-quoted POSIX shell word (an openrc file is sourced by a shell).

In a plan the secrets are ``MaskedSecret`` placeholders: the filters keep their quoting
but do not escape the placeholder, so the plan still reads ``'<secret:root>'``.

A value that no format above can carry byte for byte (control characters, whitespace at
either end, or ``\\$``, which oslo.config reads as ``$``) is refused by ``check_seed``.
"""
from __future__ import annotations

from urllib.parse import quote

#: The prefix of the environment variables that carry the lab's secrets to guest commands.
SECRET_PREFIX = "VMLAB_SECRET_"


class MaskedSecret(str):
    """A placeholder standing in for a secret in a plan; filters do not escape it."""


def secret_variable(name: str) -> str:
    """The environment variable that carries secret ``name``: VMLAB_SECRET_<NAME>."""
    return SECRET_PREFIX + name.upper()


def sql_string(value: str) -> str:
    if isinstance(value, MaskedSecret):
        return f"'{value}'"
    escaped = (value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
               .replace("\n", "\\n").replace("\r", "\\r").replace("\x1a", "\\Z"))
    return f"'{escaped}'"


def url_password(value: str) -> str:
    if isinstance(value, MaskedSecret):
        return str(value)
    return quote(value, safe="")


def oslo_value(value: str) -> str:
    if "\\$" in value:
        raise ValueError("oslo.config reads a backslash before a dollar sign as an escape: "
                         "such a value cannot be written into a service's configuration")
    if isinstance(value, MaskedSecret):
        return str(value)
    value = value.replace("$", "$$")
    if value[:1] in ("'", '"') and value[0] == value[-1]:
        return f'"{value}"'  # the parser strips one pair of quotes around a whole value
    return value


def mycnf_value(value: str) -> str:
    if isinstance(value, MaskedSecret):
        return f'"{value}"'
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
    return f'"{escaped}"'


def pymysql_option_value(value: str) -> str:
    return f'"{value}"'


def shell_word(value: str) -> str:
    if isinstance(value, MaskedSecret):
        return f"'{value}'"
    return "'" + value.replace("'", "'\\''") + "'"


FILTERS = {"sql_string": sql_string, "url_password": url_password, "oslo_value": oslo_value,
           "mycnf_value": mycnf_value, "pymysql_option_value": pymysql_option_value,
           "shell_word": shell_word}


def seed_problem(value: str) -> str | None:
    """Why ``value`` cannot be every secret of a lab, or None when it can."""
    if not value:
        return "it is empty"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in value):
        return "it holds a control character (a newline, a tab, ...)"
    if value != value.strip():
        return "it starts or ends with whitespace, which config files and rabbitmqctl strip"
    if "\\$" in value:
        return "it holds a backslash before a dollar sign, which oslo.config reads as `$`"
    return None

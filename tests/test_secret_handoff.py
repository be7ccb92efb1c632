"""Secrets reach guest commands only through their environment or stdin, byte for byte.

Every shipped profile is planned with secrets like `it's "$HOME" \\x` (a quote, double
quotes, `$`, spaces, a backslash): no value may be in any command line. Then the OpenStack
stages' commands that take a secret run through a real local bash exactly as the SSH
session sends them (vmlab.remote.shell_script), with `mysql`, `rabbitmqctl`,
`keystone-manage` and the openstack client replaced by stubs that record what they got;
the files the stages write are read back by each format's own rules.
"""
from __future__ import annotations

import configparser
import json
import os
import re
import string
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from vmlab.plan import plan
from vmlab.platforms import distro, release
from vmlab.profile import load_profile
from vmlab.remote import shell_script
from vmlab.stages.secretio import (FILTERS, MaskedSecret, mycnf_value, oslo_value,
                                   pymysql_option_value, seed_problem, shell_word, sql_string,
                                   url_password)

REPO = Path(__file__).resolve().parent.parent
PROFILES = sorted(str(p) for p in (REPO / "profiles").glob("*.yaml")) + \
    [str(REPO / "tests/data/profiles/secrets-audit.yaml")]
#: the shipped profiles that deploy OpenStack on a platform of their own (not vSphere's copy)
OPENSTACK = [p for p in PROFILES if "/profiles/" in p and "keystone" in Path(p).read_text()
             and "vsphere" not in Path(p).stem]
HARD = 'it\'s "$HOME" \\x'


def hard_secrets(names) -> dict[str, str]:
    """A distinct hard value per secret, so a mix-up shows too."""
    return {name: f"{HARD} {name}" for name in names}


def steps(stages: list[dict]):
    for stage in stages:
        for phase in ("install", "verify"):
            for step in stage[phase]:
                yield stage["stage"], step


def planned(path: str) -> tuple[dict[str, str], list[dict]]:
    loaded = load_profile(path)
    secrets = hard_secrets(loaded.profile.secrets)
    return secrets, plan("t", loaded, secrets=secrets)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: Path(p).stem)
def test_no_secret_value_is_in_any_planned_command_line(path):
    secrets, stages = planned(path)
    leaks = [f"{stage}: {name} in: {step['run']}"
             for stage, step in steps(stages) if "run" in step
             for name, value in secrets.items()
             if value in step["run"] or shell_word(value) in step["run"]]
    assert leaks == []
    # ...and the stages do use them, elsewhere: in an environment, on stdin or in a file.
    carried = " ".join(json.dumps(step.get("env", {})) + step.get("input", "")
                       + step.get("content", "") for _, step in steps(stages))
    used = {name for name, value in secrets.items()
            if value in carried or any(f(value) in carried for f in (
                sql_string, url_password, mycnf_value, shell_word, oslo_value))
            or json.dumps(value)[1:-1] in carried}
    assert used == set(secrets)


# -- through a real shell, with stubs -----------------------------------------------------

STUBS = {
    "mysql": 'cat >> "$OUT/mysql.stdin"\n',
    "rabbitmqctl": ('case "$1" in\n'
                    '  add_user|change_password) printf "%s\\n" "$@" > "$OUT/rabbit.args";\n'
                    '    IFS= read -r line; printf %s "$line" > "$OUT/rabbit.password";;\n'
                    'esac\n'),
    "keystone-manage": ('printf %s "$OS_BOOTSTRAP_PASSWORD" > "$OUT/bootstrap.password"\n'
                        'printf "%s\\n" "$@" > "$OUT/keystone.args"\n'),
}
OSC_STUB = '''import json, os, sys
def main(argv):
    with open(os.path.join(os.environ["OUT"], "osc-%d.json" % os.getpid()), "w") as f:
        json.dump({"argv": argv, "os_password": os.environ.get("OS_PASSWORD"),
                   "cmdline": open("/proc/self/cmdline", "rb").read().decode()}, f)
    return 0
'''


def stub_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in STUBS.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    for name in ("python", "python3"):  # the platform's interpreter of the openstack client
        (bin_dir / name).symlink_to(sys.executable)
    package = tmp_path / "site" / "openstackclient"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "shell.py").write_text(OSC_STUB)
    return bin_dir


def run_as_the_session_does(step: dict, tmp_path: Path, bin_dir: Path, admin_openrc: Path,
                            out: Path) -> None:
    command = step["run"].replace("/root/admin-openrc", str(admin_openrc))
    marker = uuid.uuid4().hex
    script = shell_script(command, step.get("env"), step.get("input"), marker)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "OUT": str(out),
           "PYTHONPATH": str(tmp_path / "site"), "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "--noprofile", "--norc"], input=script.encode(), env=env,
                          capture_output=True, timeout=60)
    assert f"\n{marker} 0\n".encode() in done.stdout, (command, done.stdout, done.stderr)


def read_sql_strings(sql: str) -> list[str]:
    """The string literals of ``sql`` as MariaDB reads them (default sql_mode: backslash
    escapes on; mariadb.com/kb "String Literals", the table of escape sequences)."""
    escapes = {"0": "\0", "'": "'", '"': '"', "b": "\b", "n": "\n", "r": "\r", "t": "\t",
               "Z": "\x1a", "\\": "\\", "%": "\\%", "_": "\\_"}
    found, i = [], 0
    while i < len(sql):
        if sql.startswith("-- ", i) or sql[i] == "#":  # a comment, to the end of its line
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        if sql[i] != "'":
            i += 1
            continue
        i += 1
        text = []
        while sql[i] != "'" or sql[i + 1:i + 2] == "'":
            if sql[i] == "\\":
                text.append(escapes.get(sql[i + 1], sql[i + 1]))
                i += 2
            elif sql[i] == "'":
                text.append("'")
                i += 2
            else:
                text.append(sql[i])
                i += 1
        found.append("".join(text))
        i += 1
    return found


def read_oslo(line: str) -> str:
    """An oslo.config value as the service reads it (oslo_config/iniparser.py
    _split_key_value, then cfg.py ConfigOpts._substitute)."""
    value = line.split("=", 1)[1].strip()
    if value and value[0] == value[-1] and value.startswith(('"', "'")):
        value = value[1:-1]
    value = value.replace("\\$", "$$")

    class Template(string.Template):
        idpattern = r"[_a-z][\._a-z0-9]*"
    return Template(value).safe_substitute({})


def read_mycnf(line: str) -> str:
    """A MariaDB option-file value as the client reads it (mysys/my_default.c: one pair
    of quotes around the value removed, then \\n \\t \\r \\b \\s \\" \\' \\\\ unescaped)."""
    value = line.split("=", 1)[1].strip()
    if len(value) > 1 and value[0] in "'\"" and value[0] == value[-1]:
        value = value[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "s": " ", '"': '"', "'": "'",
               "\\": "\\"}
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(escapes.get(value[i + 1], "\\" + value[i + 1]))
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def read_pymysql_option(text: str) -> str:
    """[client] password as PyMySQL reads it with read_default_file (pymysql/optionfile.py:
    configparser.RawConfigParser, no interpolation; one pair of quotes around the value
    removed; no escapes)."""
    parser = configparser.RawConfigParser(allow_no_value=True)
    parser.read_string(text)
    value = parser.get("client", "password")
    for quote in ("'", '"'):
        if len(value) >= 2 and value[0] == value[-1] == quote:
            return value[1:-1]
    return value


def survives_alembic(url: str) -> bool:
    """Whether Alembic's Config.set_main_option takes ``url`` as it is (a ConfigParser with
    '%' interpolation: Keystone 27's db_sync hands it the URL unescaped)."""
    parser = configparser.ConfigParser()
    parser.add_section("alembic")
    try:
        parser.set("alembic", "sqlalchemy.url", url)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("path", OPENSTACK, ids=lambda p: Path(p).stem)
def test_openstack_stages_hand_on_every_secret_byte_for_byte(path, tmp_path):
    secrets, stages = planned(path)
    reads_stdin = distro(load_profile(path).profile.platform).rabbitmqctl_reads_password
    bin_dir, out = stub_bin(tmp_path), tmp_path / "out"
    out.mkdir()
    files = {step["write"]: step["content"] for _, step in steps(stages) if "write" in step}
    admin_openrc = tmp_path / "admin-openrc"
    admin_openrc.write_text(files["/root/admin-openrc"])
    takers = [step for _, step in steps(stages) if "run" in step and (
        step.get("env") or (step.get("input") and re.match(r"(mysql|if rabbitmqctl)",
                                                           step["run"])))]
    for step in takers:
        run_as_the_session_does(step, tmp_path, bin_dir, admin_openrc, out)

    # MariaDB: root and the two service databases, as SQL string literals on stdin.
    literals = read_sql_strings((out / "mysql.stdin").read_text())
    for name in ("root", "keystone_db", "glance_db"):
        assert secrets[name] in literals, name
    # RabbitMQ: on rabbitmqctl's stdin (3.8+), or in the file its broker reads (3.6).
    if reads_stdin:
        assert (out / "rabbit.password").read_text() == secrets["rabbit"]
        assert (out / "rabbit.args").read_text() == "add_user\nopenstack\n"
    else:
        assert files["/var/lib/rabbitmq/.vmlab-password"] == secrets["rabbit"]
    # Keystone's bootstrap from its environment, not from an argument.
    assert (out / "bootstrap.password").read_text() == secrets["admin"]
    assert secrets["admin"] not in (out / "keystone.args").read_text()
    # The openstack client got each user's password as an argument of its own, in-process:
    # the interpreter's command line holds none, and the openrc sourced before it works.
    calls = [json.loads(p.read_text()) for p in sorted(out.glob("osc-*.json"))]
    by_user = {call["argv"][-3]: call for call in calls}
    for user in ("demo", "glance"):
        assert by_user[user]["argv"][-2:] == ["--password", secrets[user]]
        assert secrets[user] not in by_user[user]["cmdline"]
        assert by_user[user]["os_password"] == secrets["admin"]
    # The files: openrc read by a shell, SQLAlchemy URLs, oslo.config and my.cnf values.
    for user in ("admin", "demo"):
        sourced = subprocess.run(["bash", "-c", '. "$1"; printf %s "$OS_PASSWORD"', "-",
                                  "/dev/stdin"], input=files[f"/root/{user}-openrc"],
                                 capture_output=True, text=True, check=True).stdout
        assert sourced == secrets[user]
    in_option_file = release(load_profile(path).profile.openstack.release) \
        .db_password_in_option_file
    for conf, secret in (("/etc/keystone/keystone.conf", "keystone_db"),
                         ("/etc/glance/glance-api.conf", "glance_db")):
        url = re.search(r"^connection = (.*)$", files[conf], re.M).group(1)
        assert read_oslo("connection = " + url) == url  # nothing in it for oslo to change
        if in_option_file:  # the password where PyMySQL reads it, none in the URL
            assert urlsplit(url).password is None and survives_alembic(url)
            option_file = parse_qs(urlsplit(url).query)["read_default_file"][0]
            assert read_pymysql_option(files[option_file]) == secrets[secret]
        else:
            assert unquote(urlsplit(url).password) == secrets[secret]
    authtoken = re.search(r"^password = .*$", files["/etc/glance/glance-api.conf"], re.M)
    assert read_oslo(authtoken.group(0)) == secrets["glance"]
    mycnf = re.search(r"^password = .*$", files["/root/.my.cnf"], re.M)
    assert read_mycnf(mycnf.group(0)) == secrets["root"]


# -- each format's quoting, on the values that break naive quoting ------------------------

NASTY = [HARD, "'", '"', "\\", "$", "$$", "a b", "'quoted'", '"quoted"', "x\\", "%41",
         "@:/?#", "ü€", "\\'", "#not a comment", ";", "`id`", "$(id)"]


@pytest.mark.parametrize("value", NASTY)
def test_each_format_gives_the_value_back(value):
    assert read_sql_strings(f"SELECT {sql_string(value)};") == [value]
    assert unquote(urlsplit(f"mysql://u:{url_password(value)}@h/db").password) == value
    assert read_oslo(f"password = {oslo_value(value)}") == value
    assert read_mycnf(f"password = {mycnf_value(value)}") == value
    assert read_pymysql_option(f"[client]\npassword = {pymysql_option_value(value)}\n") == value
    shell = subprocess.run(["bash", "-c", f"printf %s {shell_word(value)}"],
                           capture_output=True, text=True, check=True).stdout
    assert shell == value


def test_a_plan_placeholder_is_quoted_but_not_escaped():
    masked = MaskedSecret("<secret:root>")
    assert {name: f(masked) for name, f in FILTERS.items()} == {
        "sql_string": "'<secret:root>'", "url_password": "<secret:root>",
        "oslo_value": "<secret:root>", "mycnf_value": '"<secret:root>"',
        "pymysql_option_value": '"<secret:root>"', "shell_word": "'<secret:root>'"}


@pytest.mark.parametrize("seed, problem", [
    ("", "empty"), ("a\nb", "control character"), ("tab\there", "control character"),
    (" lead", "whitespace"), ("trail ", "whitespace"), ("a\\$b", "backslash before a dollar"),
    (HARD, None), ("p@ss w0rd'\"$%", None)])
def test_a_seed_every_stage_can_carry_is_accepted_and_no_other(seed, problem):
    found = seed_problem(seed)
    assert (found is None) if problem is None else (problem in found)


def test_create_refuses_a_seed_it_cannot_carry_before_it_makes_anything(tmp_path):
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "PYTHONPATH": str(REPO),
           "VMLAB_SEED_PASSWORDS": "secret-7f3a\nsecond line"}
    done = subprocess.run([sys.executable, "-m", "vmlab", "create", "--profile",
                           "zed-aio-debian12", "--lab", "seedcheck"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "--seed-passwords" in done.stderr and "control character" in done.stderr
    assert "secret-7f3a" not in done.stdout + done.stderr
    assert not (tmp_path / "state" / "vmlab" / "labs" / "seedcheck").exists()


def test_a_percent_encoded_password_breaks_alembic_so_zed_and_epoxy_keep_it_in_a_file():
    """Why Release.db_password_in_option_file: Keystone 27's db_sync failed on a real guest
    with "invalid interpolation syntax" for exactly this URL, and Keystone 22 (Zed) on the
    next run (its db_sync exit 1); both pass the URL to Alembic unescaped."""
    assert not survives_alembic(f"mysql+pymysql://keystone:{url_password(HARD)}@controller/k")
    assert release("zed").db_password_in_option_file
    assert release("epoxy").db_password_in_option_file
    assert not release("newton").db_password_in_option_file  # sqlalchemy-migrate, no Alembic

"""Labs made by hand, for fast tests of the commands on an existing lab: a state.json written
directly, a VM in a libvirt test-driver node file (`test:///<file>`, one per test: every
connection reads the file afresh, so nothing a command does persists), and the CLI run
in-process with vmlab's own directories in a temporary home."""
from __future__ import annotations

import json
import signal
import socket
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest

from vmlab.cli import main

OWNER_NS = "https://vmlab.dev/xmlns/lab/1"
TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
RUNNING, SHUTOFF = 1, 5  # virDomainState, as the test driver's <test:runstate> takes it


def vm_xml(lab: str, snapshots: Iterable[str] = (), *, state: int = SHUTOFF,
           owner: str | None = None, forward: int = 40022) -> str:
    """A domain tagged as ``owner``'s (default: the lab's), with a chain of snapshots, the
    last one current, as a test-driver node file holds it; the guest's SSH port 22 is
    forwarded to ``forward`` on the host, as for a user-mode NIC."""
    names = list(snapshots)
    tag = (f"<metadata><vmlab:lab xmlns:vmlab='{OWNER_NS}' name='{owner or lab}' "
           f"created='2026-01-01T00:00:00+00:00' volumes='' networks='' forwards='22:{forward}' "
           "serial_log='' provider_mac='52:54:00:00:10:01' home=''/></metadata>")
    definition = (f"<name>vmlab-{lab}</name><uuid>{uuid.uuid5(uuid.NAMESPACE_DNS, lab)}</uuid>"
                  f"<memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os>{tag}")
    snaps = []
    for index, name in enumerate(names):
        parent = f"<parent><name>{names[index - 1]}</name></parent>" if index else ""
        snaps.append(
            f"<test:domainsnapshot><name>{name}</name><state>shutoff</state>{parent}"
            f"<creationTime>{1700000000 + index}</creationTime>"
            f"<active>{int(index == len(names) - 1)}</active>"
            f"<domain type='test'>{definition}</domain></test:domainsnapshot>")
    return (f"<domain type='test' xmlns:test='{TEST_NS}'>{definition}"
            f"<test:runstate>{state}</test:runstate>{''.join(snaps)}</domain>")


def node_file(path: Path, *domains: str) -> str:
    """Write a node file holding ``domains``; return its URI."""
    path.write_text(f"<node>{''.join(domains)}</node>\n")
    return f"test://{path}"


def state_v2(lab: str, uri: str, stages: dict[str, str], *, profile_path: str = "/nowhere.yaml",
             platform: str | None = "debian12") -> dict:
    """A version 2 state file's content for a libvirt lab."""
    return {
        "schema_version": 2, "lab": lab, "profile": "demo", "profile_path": profile_path,
        "driver": "libvirt", "uri": uri,
        "hypervisor": {"kind": "libvirt", "uri": uri, "pool": "vmlab"},
        "ssh": {"user": "root", "port": 22, "command_timeout_minutes": 60},
        "snapshots": {"mode": "offline"}, "platform": platform,
        "vm_name": f"vmlab-{lab}", "vm_uuid": None, "acceleration": "tcg",
        "created": "2026-01-01T00:00:00Z",
        "stages": [{"name": name, "status": status, "attempts": int(status != "pending")}
                   for name, status in stages.items()]}


def state_v3(lab: str, uri: str, stages: dict[str, str], **options: Any) -> dict:
    """A version 3 state file's content (the current one): version 2's, its stages' drift
    not recorded."""
    return dict(state_v2(lab, uri, stages, **options), schema_version=3)


@pytest.fixture
def closed_port():
    """A loopback port nobody listens on: bound, never listening, for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def write_profile(path: Path, uri: str, *, name: str = "t1", ssh_user: str = "root",
                  a: str = "true", b: str = "true", snapshots: str | None = None) -> Path:
    """A two-stage profile (``a`` and ``b`` their commands) on the hypervisor at ``uri``."""
    mode = f"snapshots: {{mode: {snapshots}}}\n" if snapshots else ""
    path.write_text(textwrap.dedent(f"""\
        name: {name}
        hypervisor: {{kind: libvirt, uri: "{uri}"}}
        install: {{method: image}}
        vm:
          nics:
            - {{role: provider, network: user, subnet: 10.0.2.0/24}}
        ssh: {{user: {ssh_user}}}
        stages:
          - {{name: a, run: ["{a}"]}}
          - {{name: b, run: ["{b}"]}}
        """) + mode)
    return path


@dataclass
class Home:
    """vmlab's directories of one test."""

    root: Path

    @property
    def labs(self) -> Path:
        return self.root / "state" / "vmlab" / "labs"

    @property
    def state_dir(self) -> Path:
        return self.root / "state" / "vmlab"

    def lab(self, name: str, content: dict | str | bytes, *, key: bool = True,
            secrets: dict[str, str] | None = None) -> Path:
        """A lab directory with ``content`` as its state file (a dict is written as JSON)."""
        directory = self.labs / name
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        state = directory / "state.json"
        if isinstance(content, dict):
            state.write_text(json.dumps(content, indent=2))
        elif isinstance(content, bytes):
            state.write_bytes(content)
        else:
            state.write_text(content)
        if key:
            (directory / "id_ed25519").write_text("not a real key\n")
        if secrets is not None:
            (directory / "secrets.json").write_text(json.dumps(secrets))
        return directory


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    for variable, folder in (("XDG_STATE_HOME", "state"), ("XDG_CONFIG_HOME", "config"),
                             ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(variable, str(tmp_path / folder))
    return Home(tmp_path)


@pytest.fixture
def vmlab_cli(capsys):
    """Run `vmlab ARGS` in this process: exit code, stdout, stderr."""
    previous = signal.getsignal(signal.SIGTERM)

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        finally:
            signal.signal(signal.SIGTERM, previous)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run

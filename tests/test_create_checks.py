"""create checks all that plan checks before touching anything, and a failed create says
where its log is; connection failures hint at what fits the URI."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tests.handmade_labs import write_profile


def keystone_profile(path: Path, uri: str, secrets: list[str]) -> Path:
    path.write_text(textwrap.dedent(f"""\
        name: ks
        hypervisor: {{kind: libvirt, uri: "{uri}"}}
        install: {{method: image}}
        vm:
          nics:
            - {{role: provider, network: user, subnet: 10.0.2.0/24}}
        stages: [keystone]
        secrets: {json.dumps(secrets)}
        """))
    return path


def test_create_refuses_what_plan_refuses_before_connecting_or_making_a_file(
        home, vmlab_cli, tmp_path, closed_port):
    # The hypervisor is a closed port: reaching for it would be exit 3, not 2.
    profile = keystone_profile(tmp_path / "ks.yaml", f"qemu+tcp://127.0.0.1:{closed_port}/system",
                               secrets=["admin"])
    planned = vmlab_cli("plan", "--profile", str(profile))
    created = vmlab_cli("create", "--profile", str(profile))
    assert planned.code == created.code == 2, created
    assert "the stages need a secret 'keystone_db' that the profile does not generate" \
        in created.err
    assert "add 'keystone_db' to the profile's `secrets:` list" in created.err
    assert not home.state_dir.exists(), sorted(home.root.rglob("*"))


def test_a_create_that_cannot_reach_its_hypervisor_stops_at_the_preflight_leaving_nothing(
        home, vmlab_cli, tmp_path, closed_port):
    far = f"qemu+tcp://127.0.0.1:{closed_port}/system"
    profile = write_profile(tmp_path / "t1.yaml", far)
    result = vmlab_cli("create", "--profile", str(profile))
    assert result.code == 3, result  # unavailable, as for every command that cannot reach it
    assert f"connection: cannot connect to libvirt at {far}" in result.err
    assert "check that 127.0.0.1:" in result.err
    assert not home.state_dir.exists(), sorted(home.root.rglob("*"))


def test_a_failed_create_keeps_its_log_with_the_reason_and_names_it(home, vmlab_cli, tmp_path,
                                                                    monkeypatch, closed_port):
    far = f"qemu+tcp://127.0.0.1:{closed_port}/system"
    monkeypatch.setattr("vmlab.preflight.require", lambda *args, **kwargs: None)
    profile = write_profile(tmp_path / "t1.yaml", far)
    result = vmlab_cli("create", "--profile", str(profile))
    assert result.code == 3, result
    kept = sorted((home.state_dir / "failed").glob("t1-*.log"))
    assert len(kept) == 1
    assert f"what create did: {kept[0]}" in result.err
    text = kept[0].read_text()
    assert f"create failed: cannot connect to libvirt at {far}" in text
    assert "hint: check that 127.0.0.1:" in text
    assert not (home.labs / "t1").exists()


def test_an_interrupted_create_keeps_its_log_and_says_where(home, vmlab_cli, tmp_path,
                                                           monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("vmlab.create._create_locked", interrupted)
    monkeypatch.setattr("vmlab.preflight.require", lambda *args, **kwargs: None)
    profile = write_profile(tmp_path / "t1.yaml", "test:///unused.xml")
    result = vmlab_cli("create", "--profile", str(profile))
    assert result.code == 130
    kept = sorted((home.state_dir / "failed").glob("t1-*.log"))
    assert len(kept) == 1 and f"what create did, and why it stopped: {kept[0]}" in result.err
    assert kept[0].read_text().endswith("create interrupted (Ctrl-C or SIGTERM)\n")


# -- connection failures: a hint that fits the URI --------------------------------------------

URIS = {
    "ssh": ("qemu+ssh://root@127.0.0.1:{port}/system?keyfile=/k/id&no_verify=1",
            ["`ssh -p {port} -i /k/id root@127.0.0.1` logs in without a prompt",
             "libvirtd runs on 127.0.0.1"]),
    "tcp": ("qemu+tcp://127.0.0.1:{port}/system",
            ["127.0.0.1:{port} is reachable from here",
             "libvirtd on 127.0.0.1 accepts TCP connections (listen_tcp = 1"]),
    "tls (named)": ("qemu+tls://127.0.0.1:{port}/system",
                    ["127.0.0.1:{port} is reachable", "accepts TLS connections",
                     "/etc/pki/CA/cacert.pem"]),
    "tls (default with a host)": ("qemu://127.0.0.1:{port}/system",
                                  ["accepts TLS connections"]),
    "local socket": ("qemu+unix:///system?socket=/nonexistent/libvirt-sock",
                     ["is libvirtd running on this machine? start it with `libvirtd -d`"]),
    "test driver": ("test:///nonexistent/node.xml",
                    ["the test driver reads /nonexistent/node.xml"]),
}


@pytest.mark.parametrize("case", sorted(URIS))
def test_a_libvirt_connection_failure_hints_at_what_the_uri_needs(home, vmlab_cli, closed_port,
                                                                  case):
    uri, hints = URIS[case]
    uri = uri.format(port=closed_port)
    result = vmlab_cli("gc", "--uri", uri)
    assert result.code == 3, result
    assert f"error: cannot connect to libvirt at {uri}" in result.err
    hint = " ".join(result.err.split("hint:", 1)[1].split())
    for text in hints:
        assert text.format(port=closed_port) in hint, hint
    if case not in ("local socket",):
        assert "libvirtd -d" not in hint


def test_a_vsphere_connection_failure_hints_at_the_address(home, vmlab_cli, tmp_path, closed_port,
                                                           monkeypatch):
    monkeypatch.setenv("VMLAB_VSPHERE_PASSWORD", "x")
    profile = tmp_path / "vs.yaml"
    profile.write_text(textwrap.dedent(f"""\
        name: vs
        hypervisor: {{kind: vsphere, host: 127.0.0.1, port: {closed_port}, user: u}}
        install: {{method: image}}
        vm:
          nics:
            - {{role: provider, network: user, subnet: 10.0.2.0/24}}
        """))
    result = vmlab_cli("gc", "--profile", str(profile))
    assert result.code == 3, result
    assert f"cannot reach vSphere at 127.0.0.1:{closed_port}" in result.err
    assert f"the profile's hypervisor host '127.0.0.1' and port {closed_port}" in result.err
    assert "libvirtd" not in result.err

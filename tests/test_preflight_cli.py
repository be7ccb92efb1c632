"""`vmlab preflight` and the preflight of `vmlab create`, through the real CLI: a profile
whose URLs point at a local mirror and whose hypervisor is libvirt's test driver."""
from __future__ import annotations

import json
import time

import pytest

from tests.mirror import (DEFAULT_NETWORK, ISO, closed_port, host_xml, lay_out, newton_profile,
                          routeless_cli, serve)


@pytest.fixture
def cli(tmp_path, vmlab_home):
    """The CLI with its own home, on a host whose routes a stand-in `ip` gives (none)."""
    return routeless_cli(tmp_path, vmlab_home)


@pytest.fixture
def mirror(tmp_path):
    with serve(tmp_path / "mirror") as running:
        lay_out(running)
        yield running


def test_a_ready_profile_passes_in_seconds(cli, mirror, tmp_path):
    host = host_xml(tmp_path / "host.xml")
    profile = newton_profile(tmp_path / "ready.yaml", mirror, f"test://{host}")
    started = time.monotonic()
    report = json.loads(cli("preflight", "--profile", str(profile), "--json").stdout)
    took = time.monotonic() - started
    assert report["ok"] and report["failures"] == 0
    statuses = {check["name"]: check["status"] for check in report["checks"]}
    assert statuses["install ISO"] == "ok" and statuses["provider network vmlab-provider " \
        "(10.91.0.0/24)"] == "ok"
    assert statuses["acceleration"] == "warn"  # the test driver offers no KVM
    assert {"libvirt", "memory", "CPUs", "storage pool vmlab", "download cache",
            "install server address", "firewall", "yum repository vmlab-openstack-newton",
            "install tree", "Glance test image"} <= set(statuses)
    assert report["seconds"] < 5 and took < 15, (report["seconds"], took)

    table = cli("preflight", "--profile", str(profile)).stdout
    assert table.splitlines()[0] == f"preflight of profile ready (lab ready) on test://{host}"
    assert "  ok    install ISO" in table and "  warn  acceleration" in table
    assert table.splitlines()[-1].endswith("ready to create, 1 warning")


def test_a_failure_exits_1_with_the_fix_of_each(cli, mirror, tmp_path):
    mirror.remove(ISO)
    host = host_xml(tmp_path / "host.xml", networks=DEFAULT_NETWORK, memory_mib=2048)
    profile = newton_profile(tmp_path / "broken.yaml", mirror, f"test://{host}",
                             provider="192.168.122.0/24")
    result = cli("preflight", "--profile", str(profile), expect=1)
    lines = result.stdout.splitlines()
    failed = [line.split()[1:3] for line in lines if line.startswith("  FAIL")]
    assert ["provider", "network"] in failed and ["install", "ISO"] in failed
    assert ["memory", "the"] in failed  # 4096 MiB wanted, 2048 on the host
    assert "fix: give the provider NIC a free subnet, e.g. `subnet: 192.168.123.0/24`" in \
        result.stdout
    assert lines[-1].endswith("3 failed, 1 warning")
    report = json.loads(cli("preflight", "--profile", str(profile), "--json", expect=1).stdout)
    assert not report["ok"] and report["failures"] == 3


def test_help_explains_and_gives_examples(cli):
    text = cli("preflight", "--help").stdout
    assert "vmlab preflight --profile newton-aio" in text and "--json" in text
    assert "Exit status 1 when a check fails" in text
    assert "--no-preflight" in cli("create", "--help").stdout


def test_a_hypervisor_that_does_not_answer_is_a_failed_check(cli, mirror, tmp_path):
    profile = newton_profile(tmp_path / "gone.yaml", mirror, "qemu+tcp://127.0.0.1:"
                             f"{closed_port()}/system")
    result = cli("preflight", "--profile", str(profile), "--no-urls", expect=1)
    assert "FAIL  connection" in result.stdout and "cannot connect to libvirt" in result.stdout
    assert "fix: check that 127.0.0.1:" in result.stdout  # the hint fits a qemu+tcp:// URI


# -- create runs the preflight first ------------------------------------------------------------

def test_create_stops_at_the_preflight_and_makes_nothing(cli, mirror, tmp_path):
    host = host_xml(tmp_path / "host.xml", networks=DEFAULT_NETWORK)
    profile = newton_profile(tmp_path / "collide.yaml", mirror, f"test://{host}",
                             provider="192.168.122.0/24")
    result = cli("create", "--profile", str(profile), expect=1)
    assert "error: preflight: 1 check failed; nothing was made" in result.stderr
    assert "overlaps libvirt network 'default'" in result.stderr
    assert "hint: give the provider NIC a free subnet" in result.stderr
    assert "all checks: vmlab preflight --profile" in result.stderr
    assert not (cli.state_dir / "labs").exists() and not (cli.state_dir / "failed").exists()


def test_create_checks_urls_unless_told_not_to(cli, mirror, tmp_path):
    host = host_xml(tmp_path / "host.xml")
    mirror.port = closed_port()
    profile = newton_profile(tmp_path / "offline.yaml", mirror, f"test://{host}")
    refused = cli("create", "--profile", str(profile), expect=1)
    assert "preflight: 8 checks failed; nothing was made" in refused.stderr
    assert "refuses connections" in refused.stderr
    # without the URL checks create goes on, and fails where it first fetches (the ISO)
    skipped = cli("create", "--profile", str(profile), "--no-preflight", expect=3)
    assert "preflight: " in skipped.stderr and "checks passed" in skipped.stderr
    assert f"downloading {mirror.url(ISO)} failed" in skipped.stderr
    assert not (cli.state_dir / "labs" / "offline").exists()  # removed as ever

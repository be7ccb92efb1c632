"""Nightly rebuilds on real libvirt/qemu: retries with a flaky stage, JUnit a consumer reads,
a concurrent rebuild refused with exit 4, and garbage collection of leaked VMs."""
from __future__ import annotations

import http.server
import ipaddress
import json
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
from junitparser import JUnitXml, TestSuite

from tests.lab_harness import VMLAB, virsh
from vmlab.drivers.base import DiskSpec, NetworkSpec, NicSpec, VMSpec
from vmlab.drivers.libvirt import LibvirtDriver

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LAB = "e2e-rebuild"


class FailsOnce(http.server.BaseHTTPRequestHandler):
    """Answers 500 to the first request and 200 afterwards: a flaky upstream."""

    calls = 0

    def do_GET(self):  # noqa: N802
        type(self).calls += 1
        self.send_response(500 if type(self).calls == 1 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky_upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FailsOnce)
    FailsOnce.calls = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_rebuilds_retry_report_lock_and_collect(libvirtd, vmlab, tmp_path, flaky_upstream):
    profile = tmp_path / "rebuild.yaml"
    # The guest reaches the host's loopback as 10.0.2.2 through its user-mode NIC.
    profile.write_text(textwrap.dedent(f"""\
        extends: demo
        name: e2e-rebuild
        snapshots: {{mode: live}}  # no boot per stage: the demo test proves offline snapshots
        stages:
          - hosts
          - name: fetch
            description: asks a flaky upstream, which fails the first time
            run:
              - >-
                exec 3<>/dev/tcp/10.0.2.2/{flaky_upstream} &&
                printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '
        """))

    # 1. From scratch, the flaky stage fails once, is rolled back and passes on retry.
    first = vmlab("rebuild", "--profile", str(profile), "--lab", LAB, "--retries", "1",
                  "--json")
    report = json.loads(first.stdout)
    stages = {s["name"]: s for s in report["stages"]}
    assert report["status"] == "passed" and report["mode"] == "from scratch"
    assert stages["hosts"]["status"] == "passed"
    assert stages["fetch"]["status"] == "flaky" and stages["fetch"]["attempts"] == 2
    assert FailsOnce.calls == 2
    run_dir = Path(report["run_dir"])
    parsed = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    suite = parsed if isinstance(parsed, TestSuite) else next(iter(parsed))
    assert suite.name == f"vmlab.{LAB}"
    cases = {case.name: case for case in suite}
    assert set(cases) == {"hosts", "fetch"}
    assert suite.failures == 0 and suite.tests == 2
    assert "FLAKY" in (cases["fetch"].system_out or "")
    assert (run_dir / "logs" / "vmlab.log").is_file()
    assert len(list((run_dir / "logs").glob("02-fetch-*.log"))) == 2
    run = json.loads((run_dir / "run.json").read_text())
    assert run["acceleration"] in ("kvm", "tcg") and run["driver"] == "libvirt"

    # 2. Replayed from the first stage's snapshot; a concurrent rebuild is refused with 4.
    second = subprocess.Popen(VMLAB + ["rebuild", "--profile", str(profile), "--lab", LAB,
                                       "--from", "hosts"], env=vmlab.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL)
    info = vmlab.state_dir / "runs" / LAB / "rebuild.info"
    deadline = time.monotonic() + 60
    while not info.is_file():
        assert time.monotonic() < deadline and second.poll() is None
        time.sleep(0.2)
    refused = vmlab("rebuild", "--profile", str(profile), "--lab", LAB, expect=4)
    assert f"pid {second.pid}" in refused.stderr
    out, err = second.communicate(timeout=1200)
    assert second.returncode == 0, err
    runs = vmlab.json("runs", "--lab", LAB)
    assert [r["status"] for r in runs] == ["passed", "passed"]
    assert runs[1]["mode"] == "from hosts"

    # 3. gc finds a leaked VM of this vmlab home and removes it with --yes; it leaves alone
    #    an untagged VM and a VM another vmlab home (another user's state dir) made.
    leak, stranger = f"gc-leak-{os.getpid()}", f"vmlab-untagged-{os.getpid()}"
    neighbour = f"gc-neighbour-{os.getpid()}"
    home = (vmlab.state_dir / "home-id").read_text().strip()
    with LibvirtDriver(libvirtd) as driver:
        for lab, lab_home, mac in ((leak, home, "52:54:00:00:30:01"),
                                   (neighbour, "another-home", "52:54:00:00:30:02")):
            driver.create(VMSpec(name=f"vmlab-{lab}", lab=lab, cpus=1, memory_mib=64,
                                 disk=DiskSpec(1), accel="tcg", home=lab_home, nics=(NicSpec(
                                     "provider", NetworkSpec("user", "p", ipaddress.ip_network(
                                         "10.0.2.0/24")), mac),)))
        driver.conn.defineXML(f"<domain type='qemu'><name>{stranger}</name><memory unit='MiB'>"
                              "64</memory><os><type arch='x86_64'>hvm</type></os></domain>")
    try:
        dry = vmlab.json("gc")
        assert dry["deleted"] is False
        names = [row["vm"] for row in dry["garbage"]]
        assert f"vmlab-{leak}" in names and stranger not in names
        assert f"vmlab-{neighbour}" not in names
        assert f"vmlab-{LAB}" not in names  # its lab exists
        vmlab("gc", "--yes")
        domains = virsh("list", "--all", "--name").split()
        assert f"vmlab-{leak}" not in domains and stranger in domains
        assert f"vmlab-{neighbour}" in domains
        assert f"vmlab-{leak}" not in virsh("vol-list", "vmlab")
    finally:
        subprocess.run(["virsh", "undefine", stranger], capture_output=True)
        with LibvirtDriver(libvirtd) as driver:
            ref = driver.find(f"vmlab-{neighbour}")
            if ref is not None:
                driver.destroy(ref)
        vmlab("destroy", "--lab", LAB, "--yes")

"""The preflight on vSphere, against the simulator (tests/vsphere_fixtures.py): the login,
the placement, room on the datastore, the port groups, memory and CPUs, and the install
server's address. The password comes from the environment variable the profile names."""
from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest

from tests.lab_harness import Vmlab
from tests.vsphere_helpers import HOST, spec
from vmlab.drivers.base import DiskSpec, NetworkSpec
from vmlab.preflight import run
from vmlab.profile import load_profile

PASSWORD_ENV = "VMLAB_TEST_VSPHERE_PREFLIGHT"


def by_name(checks) -> dict:
    return {check.name: check for check in checks}


def test_a_vm_the_simulator_can_take_passes(driver):
    checks = by_name(driver.preflight(spec(), media_bytes=1 << 30))
    assert {c.status for c in checks.values()} == {"ok"}, checks
    assert checks["credentials"].detail.startswith("logged in to ")
    assert f"host {HOST}" in checks["placement"].detail
    assert "GiB free for 1.0 GiB of install media + a thin disk that grows to 3 GiB" in \
        checks["datastore LocalDS_0"].detail
    assert checks["provider port group VM Network"].detail == f"exists on host {HOST}"
    management = next(name for name in checks if name.startswith("management port group"))
    assert "vmlab makes it" in checks[management].detail


def test_a_missing_port_group_fails_naming_those_there_are(driver):
    vm = spec()
    provider = dataclasses.replace(vm.nics[0], network=NetworkSpec(
        "nat", "Lab Network", vm.nics[0].network.subnet))
    checks = by_name(driver.preflight(dataclasses.replace(vm, nics=(provider, vm.nics[1]))))
    check = checks["provider port group Lab Network"]
    assert check.status == "fail" and "there are: " in check.detail
    assert "VM Network" in check.detail and "existing port group" in check.fix


def test_more_than_the_host_has_fails(driver):
    threads = driver.host_system.summary.hardware.numCpuThreads
    memory = driver.host_system.summary.hardware.memorySize >> 20
    checks = by_name(driver.preflight(spec(cpus=threads + 1, memory_mib=memory + 1,
                                           disk=DiskSpec(1 << 20))))
    assert checks["CPUs"].status == "fail" and f"at most {threads}" in checks["CPUs"].fix
    assert checks["memory"].status == "fail"
    assert checks["datastore LocalDS_0"].status in ("warn", "fail")


# -- the whole preflight of a vSphere profile ---------------------------------------------------

def vsphere_profile(tmp_path, vcsim, serve_on: str = "null"):
    path = tmp_path / "vs.yaml"
    path.write_text(textwrap.dedent(f"""\
        extends: newton-aio-vsphere
        name: vs
        hypervisor:
          kind: vsphere
          host: {vcsim.host}
          port: {vcsim.port}
          user: {vcsim.user}
          password_env: {PASSWORD_ENV}
          insecure: true
          host_system: {HOST}
        install:
          serve_on: {serve_on}
        vm:
          memory_mib: 1024
        """))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    for variable in ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


def test_without_the_password_the_credentials_fail(home, vcsim, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    report = run("vs", load_profile(str(vsphere_profile(home, vcsim))), urls=False)
    failed = by_name(report.failures)
    assert failed["connection"].detail == f"no vSphere password: ${PASSWORD_ENV} is not set"
    assert failed["connection"].fix.startswith(f"export {PASSWORD_ENV}=")


def test_a_wrong_password_is_refused(home, vcsim, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "wrong")
    report = run("vs", load_profile(str(vsphere_profile(home, vcsim))), urls=False)
    assert "refused the login" in by_name(report.failures)["connection"].detail


def test_the_install_server_must_listen_on_an_address_of_this_machine(home, vcsim,
                                                                       monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, vcsim.password)
    report = run("vs", load_profile(str(vsphere_profile(home, vcsim))), urls=False)
    failed = by_name(report.failures)
    assert list(failed) == ["install server address"]
    assert "no interface of this machine has 192.168.122.1" in \
        failed["install server address"].detail
    assert "install.serve_on" in failed["install server address"].fix

    report = run("vs", load_profile(str(vsphere_profile(home, vcsim, "127.0.0.1"))),
                 urls=False)
    assert report.failures == []
    assert by_name(report.checks)["credentials"].status == "ok"


def test_the_cli_reads_the_password_from_the_environment_only(tmp_path, vcsim, vmlab_home):
    cli = Vmlab({**vmlab_home, PASSWORD_ENV: vcsim.password,
                 "XDG_STATE_HOME": str(tmp_path / "state")})
    result = cli("preflight", "--profile", str(vsphere_profile(tmp_path, vcsim, "127.0.0.1")),
                 "--no-urls", "--json")
    report = json.loads(result.stdout)
    assert report["ok"] and report["hypervisor"] == \
        f"vsphere://{vcsim.user}@{vcsim.host}:{vcsim.port}"
    assert vcsim.password not in result.stdout + result.stderr


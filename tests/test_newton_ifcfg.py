"""The network stage's ifcfg files on a model of a CentOS 7 guest just installed by anaconda:
anaconda's own files for both NICs (named after the device, DEVICE= and NAME=, no HWADDR=)
are removed, so each NIC has one profile, vmlab's, matched by MAC."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vmlab.plan import plan
from vmlab.profile import load_profile
from vmlab.stages import StageEnv

IFCFG = "/etc/sysconfig/network-scripts"
SYSFS = "/sys/class/net"


def anaconda_guest(root: Path, macs: dict[str, str]) -> Path:
    """A guest's sysfs NICs (device -> MAC) and the ifcfg files anaconda writes for them."""
    scripts = root / IFCFG.lstrip("/")
    scripts.mkdir(parents=True)
    (scripts / "ifcfg-lo").write_text("DEVICE=lo\nIPADDR=127.0.0.1\nNAME=loopback\n")
    for index, (device, mac) in enumerate(macs.items()):
        (root / SYSFS.lstrip("/") / device).mkdir(parents=True)
        (root / SYSFS.lstrip("/") / device / "address").write_text(mac + "\n")
        boot = "BOOTPROTO=dhcp\n" if index == 0 else \
            "BOOTPROTO=none\nIPADDR=192.168.70.2\nPREFIX=24\nDEFROUTE=no\n"
        (scripts / f"ifcfg-{device}").write_text(
            f'TYPE="Ethernet"\n{boot}NAME="{device}"\nUUID="0-{index}"\nDEVICE="{device}"\n'
            'ONBOOT="yes"\n')
    return scripts


def run_network_stage(root: Path) -> None:
    stage = next(s for s in plan("t", load_profile("newton-aio")) if s["stage"] == "network")
    for step in stage["install"]:
        if "write" in step and step["write"].startswith(IFCFG):
            (root / step["write"].lstrip("/")).write_text(step["content"])
        elif "run" in step and IFCFG in step["run"]:
            command = step["run"].replace(SYSFS, str(root / SYSFS.lstrip("/"))) \
                .replace(IFCFG, str(root / IFCFG.lstrip("/")))
            result = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
            assert result.returncode == 0, result.stderr


@pytest.fixture
def macs():
    env = {nic["role"]: nic["mac"] for nic in
           StageEnv(lab="t", profile=load_profile("newton-aio").profile).nics}
    return {"eth0": env["provider"], "eth1": env["management"].upper()}


def test_anacondas_files_without_hwaddr_are_removed_by_device(tmp_path, macs):
    scripts = anaconda_guest(tmp_path, macs)
    run_network_stage(tmp_path)
    assert sorted(p.name for p in scripts.iterdir()) == \
        ["ifcfg-lo", "ifcfg-management", "ifcfg-provider"]


def test_a_file_naming_the_device_under_another_name_is_removed_too(tmp_path, macs):
    scripts = anaconda_guest(tmp_path, macs)
    (scripts / "ifcfg-eth1").rename(scripts / "ifcfg-System_eth1")
    (scripts / "ifcfg-Wired_connection_1").write_text("HWADDR=" + macs["eth0"] + "\n")
    run_network_stage(tmp_path)
    assert sorted(p.name for p in scripts.iterdir()) == \
        ["ifcfg-lo", "ifcfg-management", "ifcfg-provider"]


def test_a_second_run_keeps_vmlabs_files(tmp_path, macs):
    scripts = anaconda_guest(tmp_path, macs)
    run_network_stage(tmp_path)
    run_network_stage(tmp_path)
    assert "IPADDR=192.168.70.2" in (scripts / "ifcfg-management").read_text()
    assert sorted(p.name for p in scripts.iterdir()) == \
        ["ifcfg-lo", "ifcfg-management", "ifcfg-provider"]

"""The network stage's check that a DHCP NIC holds a lease, run by a real shell against a
stand-in `ip` that prints what iproute2 prints for a NIC with and without an address."""
from __future__ import annotations

import subprocess
from pathlib import Path

from vmlab.stages.environment import dhcp_lease_check

MAC = "52:54:00:5c:bf:8f"
LINKS = (f"1: lo: <LOOPBACK,UP> mtu 65536\\    link/loopback 00:00:00:00:00:00\n"
         f"2: enp1s0: <BROADCAST,UP> mtu 1500\\    link/ether {MAC} brd ff:ff:ff:ff:ff:ff\n")
LEASED = "2: enp1s0    inet 192.168.123.57/24 brd 192.168.123.255 scope global dynamic enp1s0\n"


def run_check(tmp_path: Path, addresses: str) -> int:
    fake = tmp_path / "ip"
    fake.write_text("#!/bin/sh\n"
                    f"case \"$*\" in\n"
                    f"  '-o link') printf '%s' '{LINKS}' ;;\n"
                    f"  '-o -4 addr show dev enp1s0') printf '%s' '{addresses}' ;;\n"
                    "  *) echo \"Device not found: $*\" >&2; exit 1 ;;\n"
                    "esac\n")
    fake.chmod(0o755)
    return subprocess.run(["sh", "-c", dhcp_lease_check(MAC)], capture_output=True,
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"}).returncode


def test_a_nic_with_a_lease_passes(tmp_path):
    assert run_check(tmp_path, LEASED) == 0


def test_a_nic_without_an_address_fails(tmp_path):
    assert run_check(tmp_path, "") != 0


def test_a_mac_no_nic_has_fails():
    assert subprocess.run(["sh", "-c", dhcp_lease_check("52:54:00:00:00:01")],
                          capture_output=True).returncode != 0

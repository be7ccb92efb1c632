"""End to end on a real libvirtd with a real qemu guest, through the real CLI.

The demo on vmlab's own libvirt networks (profiles/demo-nat.yaml: a NAT provider network
with DHCP and an isolated management network, as newton-aio defines them), in a network
namespace of the test's own (tests/netns_fixtures.py), plus a stage that fails on its first
run after writing a marker file to the guest's disk: create fails at that stage, rollback
really reverts the disk (the marker is gone), resume runs to the end, destroy leaves nothing
behind, the networks included, and the host's own network is as it was.
"""
from __future__ import annotations

import ipaddress
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest

from tests import host_network

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAB = "e2e-demo"
VM = f"vmlab-{LAB}"
MARKER = "/var/lib/vmlab-e2e-marker"
NETWORKS = {"vmlab-provider": "192.168.123.0/24", "vmlab-management": "192.168.70.0/24"}
#: The failed command in a stage log (vmlab/remote.py: "[stamp] $ command", then, with no
#: output, "[stamp] exit CODE (SECONDS s)").
FAILED_FALSE = re.compile(r"^\[[^\]]+\] \$ false\n\[[^\]]+\] exit 1 \(\d+\.\d\ds\)$", re.M)


def write_profile(path: Path, fail: bool) -> None:
    """The demo-nat profile with a `flaky` stage; `fail` makes it fail after the marker."""
    ending = '"false"' if fail else '"true"'
    path.write_text(textwrap.dedent(f"""\
        extends: demo-nat
        name: e2e-demo
        stages:
          - hosts
          - name: flaky
            description: writes a marker to the disk, then {'fails' if fail else 'succeeds'}
            run:
              - echo "written by the flaky stage" > {MARKER} && sync
              - {ending}
            verify:
              - test -s {MARKER}
          - memcached-install
          - memcached-config
        """))


def interfaces(hypervisor, domain: str) -> dict[str, tuple[str, str]]:
    """`virsh domiflist`: source network -> (type, MAC)."""
    rows = [line.split() for line in hypervisor.virsh("domiflist", domain).splitlines()[2:]]
    return {row[2]: (row[1], row[4].lower()) for row in rows if len(row) == 5}


def assert_host_network_unchanged(before: host_network.HostNetwork) -> None:
    changed = before.differences(host_network.snapshot())
    assert not changed, "\n".join(changed)


def gc_rows(vmlab) -> list[dict]:
    """What `vmlab gc` (a dry run without --yes) would delete."""
    return json.loads(vmlab("gc", "--json").stdout)["garbage"]


def test_create_fail_rollback_resume_destroy_on_libvirt_networks(
        netns_libvirtd, vmlab_netns, host_network_before, tmp_path):
    vmlab, hypervisor = vmlab_netns, netns_libvirtd
    profile = tmp_path / "e2e-demo.yaml"
    write_profile(profile, fail=True)

    # 1. create runs the stages and stops at the failing one, naming the way back.
    failed = vmlab("create", "--profile", str(profile), "--lab", LAB, expect=1)
    assert f"vmlab rollback flaky --lab {LAB}" in failed.stderr
    assert f"vmlab resume --lab {LAB}" in failed.stderr
    assert "Traceback" not in failed.stderr

    status = vmlab.json("status", "--lab", LAB)
    stages = {row["name"]: row for row in status["stages"]}
    assert stages["hosts"]["status"] == "done"
    assert stages["flaky"]["status"] == "failed"
    assert stages["memcached-install"]["status"] == "pending"
    assert status["power"] == "running"
    assert status["acceleration"] in ("kvm", "tcg")
    assert status["snapshot_mode"] == "offline"
    assert {"hosts", "flaky"} <= {s["name"] for s in vmlab.json("snapshots", "--lab", LAB)}
    log = Path(stages["flaky"]["log"]).read_text()
    assert FAILED_FALSE.search(log), log

    # vmlab made both networks as the profile defines them, the NAT one with DHCP.
    for name, subnet in NETWORKS.items():
        xml = hypervisor.virsh("net-dumpxml", name)
        assert f"<name>{name}</name>" in xml
        assert ("<forward mode='nat'" in xml) == (name == "vmlab-provider"), xml
        assert ("<dhcp>" in xml) == (name == "vmlab-provider"), xml
        assert str(next(ipaddress.ip_network(subnet).hosts())) in xml
    # The guest's NICs are libvirt network interfaces, which libvirt's tools see.
    nics = interfaces(hypervisor, VM)
    assert set(nics) == set(NETWORKS), nics
    assert all(kind == "network" for kind, _ in nics.values()), nics
    provider_mac = nics["vmlab-provider"][1]
    # The provider NIC took its address from the network's dnsmasq: a lease for its MAC.
    leases = hypervisor.virsh("net-dhcp-leases", "vmlab-provider", "--mac", provider_mac)
    leased = re.findall(r"(192\.168\.123\.\d+)/24", leases)
    assert len(leased) == 1, leases
    by_lease = hypervisor.virsh("domifaddr", VM, "--source", "lease")
    assert provider_mac in by_lease.lower() and f"{leased[0]}/24" in by_lease, by_lease
    # SSH reaches the guest on its static management address, as the manual's host does.
    assert status["ssh"]["host"] == "192.168.70.2" and status["ssh"]["port"] == 22
    # The guest resolves names (the stages' apt needs it) through the provider network's
    # dnsmasq, and its default route is that network's.
    looked_up = vmlab("ssh", "--lab", LAB, "--", "getent", "hosts", "deb.debian.org",
                      expect=None)
    assert looked_up.returncode == 0 and looked_up.stdout.strip(), looked_up
    resolv = vmlab("ssh", "--lab", LAB, "--", "cat", "/etc/resolv.conf").stdout
    assert re.findall(r"^nameserver (\S+)", resolv, re.M) == ["192.168.123.1"], resolv
    route = vmlab("ssh", "--lab", LAB, "--", "ip", "-4", "route", "show", "default").stdout
    assert route.startswith("default via 192.168.123.1 "), route
    address = vmlab("ssh", "--lab", LAB, "--", "ip", "-4", "-o", "addr", "show").stdout
    assert f" {leased[0]}/24 " in address and " 192.168.70.2/24 " in address, address
    # The networks, their bridges, dnsmasq and NAT rules live in the namespace only.
    assert_host_network_unchanged(host_network_before)

    # The failed stage wrote its marker to the guest's disk.
    assert "written by the flaky stage" in vmlab("ssh", "--lab", LAB, "--", "cat", MARKER).stdout
    # The demo's first stage really ran: the controller resolves to the management address.
    hosts = vmlab("ssh", "--lab", LAB, "--", "getent", "hosts", "controller").stdout
    assert hosts.split()[0] == "192.168.70.2"

    # 2. rollback reverts the disk: the marker is gone.
    vmlab("rollback", "flaky", "--lab", LAB)
    gone = vmlab("ssh", "--lab", LAB, "--", "test", "-e", MARKER, expect=None)
    assert gone.returncode == 1, gone.stderr
    status = vmlab.json("status", "--lab", LAB)
    assert [row["status"] for row in status["stages"]] == ["done", "pending", "pending",
                                                           "pending"]

    # 3. the operator fixes the stage, then resume runs from it to the end (the
    # memcached-install stage fetches from the Debian archive through the NAT network).
    write_profile(profile, fail=False)
    vmlab("resume", "--lab", LAB)
    status = vmlab.json("status", "--lab", LAB)
    assert all(row["status"] == "done" for row in status["stages"]), status["stages"]
    assert status["complete"] is True
    snapshots = vmlab.json("snapshots", "--lab", LAB)
    names = [s["name"] for s in snapshots]
    assert names == ["hosts", "flaky", "memcached-install", "memcached-config", "complete"]
    parents = {s["name"]: s["parent"] for s in snapshots}
    assert parents["flaky"] == "hosts" and parents["complete"] == "memcached-config"
    # memcached answers on the management address inside the guest.
    reply = vmlab("ssh", "--lab", LAB, "--",
                  "exec 3<>/dev/tcp/192.168.70.2/11211; printf 'version\\r\\n' >&3; "
                  "read -t 5 r <&3; echo $r").stdout
    assert reply.startswith("VERSION ")
    # After the reboots of the offline snapshots, DNS is still the network's.
    resolv = vmlab("ssh", "--lab", LAB, "--", "cat", "/etc/resolv.conf").stdout
    assert re.findall(r"^nameserver (\S+)", resolv, re.M) == ["192.168.123.1"], resolv

    # 4. a corrupt state file is a clear error with a way back from the hypervisor's tags.
    state_file = vmlab.state_dir / "labs" / LAB / "state.json"
    state_file.write_text("{torn")
    broken = vmlab("status", "--lab", LAB, expect=1)
    assert "not valid JSON" in broken.stderr and f"vmlab recover --lab {LAB}" in broken.stderr
    vmlab("recover", "--lab", LAB, "--profile", str(profile))
    recovered = vmlab.json("status", "--lab", LAB)
    assert [row["status"] for row in recovered["stages"]] == ["done"] * 4

    # 5. gc leaves a lab alone while it exists; once its lab dir is gone (leaked), gc
    # finds the VM with its disk and both networks.
    assert gc_rows(vmlab) == []
    lab_dir = vmlab.state_dir / "labs" / LAB
    hidden = tmp_path / "hidden-lab-dir"
    shutil.move(lab_dir, hidden)
    try:
        leaked = gc_rows(vmlab)
    finally:
        shutil.move(hidden, lab_dir)
    assert [row["vm"] for row in leaked] == [VM], leaked
    assert {f"network {name}" for name in NETWORKS} <= set(leaked[0]["with"]), leaked
    assert f"volume {VM}-disk.qcow2" in leaked[0]["with"], leaked

    # 6. destroy leaves no domain, volume, network, console log or lab file.
    console_log = Path(vmlab.json("status", "--lab", LAB)["console_log"])
    assert hypervisor.run(["test", "-f", str(console_log)]).returncode == 0
    vmlab("destroy", "--lab", LAB, "--yes")
    assert hypervisor.run(["test", "-e", str(console_log)]).returncode == 1
    assert VM not in hypervisor.virsh("list", "--all", "--name").split()
    assert VM not in hypervisor.virsh("vol-list", "vmlab")
    assert not set(NETWORKS) & set(hypervisor.virsh("net-list", "--all", "--name").split())
    assert not (vmlab.state_dir / "labs" / LAB).exists()
    assert_host_network_unchanged(host_network_before)

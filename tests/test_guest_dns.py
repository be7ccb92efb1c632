"""The guest's DNS follows its provider network, for every shipped profile: the files the
network stage writes (resolv.conf now, and on CentOS the ifcfg keys NetworkManager rewrites
resolv.conf from at every boot) name the resolver that network kind has."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from vmlab.dns import guest_dns
from vmlab.plan import plan
from vmlab.profile import load_profile

PROFILES = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "profiles")
                  .glob("*.yaml"))


def expected_dns(profile) -> list[str] | None:
    """What the provider network kind gives, worked out here from the network kind."""
    if profile.vm.dns is not None:
        return [str(s) for s in profile.vm.dns]
    nic = profile.vm.nic("provider")
    if profile.hypervisor.kind == "vsphere":
        return None  # the port group's DHCP
    if nic.network == "user":
        return [str(nic.subnet[3])]  # QEMU's resolver: 10.0.2.3 on 10.0.2.0/24
    return [str(nic.subnet[1])]  # libvirt's dnsmasq on the network's address


def written(profile_name: str) -> dict[str, str]:
    stages = {s["stage"]: s for s in plan("t", load_profile(profile_name))}
    if "network" not in stages:
        return {}
    return {s["write"]: s["content"] for s in stages["network"]["install"] if "write" in s}


def keys(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines()
                if "=" in line and not line.startswith("#"))


def nameservers(text: str) -> list[str]:
    return [line.split()[1] for line in text.splitlines() if line.startswith("nameserver ")]


def test_every_shipped_profile_is_covered():
    assert {"newton-aio", "newton-aio-vsphere", "zed-aio-debian12", "demo"} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_dns_follows_the_provider_network(name):
    profile = load_profile(name).profile
    expected = expected_dns(profile)
    given = guest_dns(profile)
    assert (None if given is None else [str(s) for s in given]) == expected
    files = written(name)
    if not files:
        return  # no network stage: the image seed carries guest_dns (test_image)
    if expected is None:
        assert "/etc/resolv.conf" not in files  # the DHCP lease's servers stay
    else:
        assert nameservers(files["/etc/resolv.conf"]) == expected
    if profile.platform != "centos7":
        return
    ifcfg = {path.rsplit("ifcfg-", 1)[1]: keys(text) for path, text in files.items()
             if "/ifcfg-" in path}
    provider = ifcfg["provider"]
    dns_keys = [provider[k] for k in sorted(provider) if k.startswith("DNS")]
    if expected is None:
        assert provider["PEERDNS"] == "yes" and not dns_keys
    else:
        # PEERDNS=no without DNS1 leaves NetworkManager's resolv.conf without a nameserver
        assert provider["PEERDNS"] == "no" and dns_keys == expected
    for role, values in ifcfg.items():
        if role != "provider":
            assert values["PEERDNS"] == "no" and not any(k.startswith("DNS") for k in values)


def test_newton_aio_resolves_through_its_nat_networks_gateway():
    profile = load_profile("newton-aio").profile
    nic = profile.vm.nic("provider")
    assert (nic.network, profile.hypervisor.kind) == ("nat", "libvirt")
    assert [str(s) for s in guest_dns(profile)] == [str(nic.subnet[1])] != ["10.0.2.3"]


def test_the_manuals_resolver_only_when_the_profile_sets_it(tmp_path):
    path = tmp_path / "manual-dns.yaml"
    path.write_text("extends: newton-aio\nvm:\n  dns: [114.114.114.114]\n")
    loaded = load_profile(str(path))
    assert guest_dns(loaded.profile) == (ipaddress.IPv4Address("114.114.114.114"),)
    stages = {s["stage"]: s for s in plan("t", loaded)}
    files = {s["write"]: s["content"] for s in stages["network"]["install"] if "write" in s}
    assert nameservers(files["/etc/resolv.conf"]) == ["114.114.114.114"]
    assert keys(files["/etc/sysconfig/network-scripts/ifcfg-provider"])["DNS1"] == \
        "114.114.114.114"
    verify = [s["run"] for s in stages["network"]["verify"]]
    assert "grep -q '^nameserver 114.114.114.114$' /etc/resolv.conf" in verify

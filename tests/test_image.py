"""Guest images: the cache key follows the inputs; the seed is what the guest's unit reads.
(Building and booting a real image is covered by the end-to-end tests.)"""
from __future__ import annotations

import subprocess

from vmlab.image import SEED_SCRIPT, ImageSpec, image_key, seed_entries


def test_cache_key_changes_with_every_input():
    base = ImageSpec()
    variants = [ImageSpec(size_gib=8), ImageSpec(packages=("chrony",)),
                ImageSpec(mirror="http://mirror.example/debian")]
    keys = {image_key(base)} | {image_key(v) for v in variants}
    assert len(keys) == 4
    assert image_key(ImageSpec(packages=("a", "b"))) == image_key(ImageSpec(packages=("b", "a")))


def test_seed_entries_carry_key_hostname_network_and_dns():
    entries = dict(seed_entries(authorized_keys="ssh-ed25519 AAAA lab", hostname="controller",
                                nics=[("52:54:00:AA:00:01", "10.0.2.15", 24, "10.0.2.2"),
                                      ("52:54:00:aa:00:02", "192.168.70.2", 24, None)],
                                dns=["10.0.2.3"]))
    assert entries["authorized_keys"] == "ssh-ed25519 AAAA lab\n"
    assert entries["hostname"] == "controller"
    assert entries["network"] == ("52:54:00:aa:00:01 10.0.2.15/24 10.0.2.2\n"
                                  "52:54:00:aa:00:02 192.168.70.2/24\n")
    assert entries["dns"] == "nameserver 10.0.2.3\n"


def test_seed_script_is_valid_shell():
    subprocess.run(["sh", "-n"], input=SEED_SCRIPT, text=True, check=True)


def test_without_name_servers_the_seed_leaves_resolv_conf_alone():
    entries = dict(seed_entries(authorized_keys="k", hostname="controller", nics=[], dns=[]))
    assert "dns" not in entries  # the seed script rewrites resolv.conf only from an entry


def test_a_nat_nic_without_an_address_is_seeded_for_dhcp_and_ssh_goes_to_the_static_one():
    """demo-nat: the provider NIC (NAT, no address) takes DHCP; the management NIC keeps
    192.168.70.2, where SSH reaches the guest."""
    from vmlab.profile import load_profile
    from vmlab.vmspec import dhcp_macs, ssh_address, static_addresses

    profile = load_profile("demo-nat").profile
    provider, management = profile.vm.nic("provider"), profile.vm.nic("management")
    assert dhcp_macs("lab", profile) == (provider.mac_for("lab"),)
    entries = dict(seed_entries(authorized_keys="k", hostname="controller",
                                nics=static_addresses("lab", profile), dns=["192.168.123.1"],
                                dhcp=dhcp_macs("lab", profile)))
    assert entries["network"] == (f"{management.mac_for('lab').lower()} 192.168.70.2/24\n"
                                  f"{provider.mac_for('lab').lower()} dhcp\n")
    assert ssh_address(profile) == "192.168.70.2"
    # user-mode NICs: SSH goes through the forwarded port, no static address is used
    assert ssh_address(load_profile("demo").profile) is None
    assert dhcp_macs("lab", load_profile("demo").profile) == ()


def test_the_dhclient_hook_keeps_the_seeds_name_servers_only_when_there_is_a_dns_entry(
        tmp_path):
    from vmlab.image import DHCLIENT_KEEP_DNS, SEED_DIR

    def resolv_conf_written(seed_has_dns: bool) -> bool:
        hook = DHCLIENT_KEEP_DNS.replace(SEED_DIR, str(tmp_path / "seed"))
        if seed_has_dns:
            (tmp_path / "seed/dns").mkdir(parents=True, exist_ok=True)
            (tmp_path / "seed/dns/raw").write_text("nameserver 192.168.123.1\n")
        # as dhclient-script does: its make_resolv_conf, then the enter hooks sourced
        script = f"make_resolv_conf() {{ echo written; }}\n{hook}\nmake_resolv_conf\n"
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
        return out.stdout.strip() == "written"

    assert resolv_conf_written(seed_has_dns=False)
    assert not resolv_conf_written(seed_has_dns=True)

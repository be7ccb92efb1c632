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

"""Kickstart files: rendered, validated with pykickstart's RHEL7 handler, secrets hidden."""
from __future__ import annotations

import pytest
from passlib.hash import sha512_crypt

from vmlab.errors import KickstartError
from vmlab.kickstart import KickstartInputs, mask_secrets, render_kickstart, validate_kickstart

INPUTS = KickstartInputs(
    lab="t", hostname="controller", provider_mac="52:54:00:00:00:01",
    management_mac="52:54:00:00:00:02", management_address="192.168.70.2",
    management_prefix=24, root_password="Root-Pass-99", ssh_public_key="ssh-ed25519 AAAAkey t",
    install_url="http://vault.centos.org/7.9.2009/os/x86_64/",
    done_url="http://10.0.2.2:8080/token/done", packages=("chrony",))


def parsed(text: str):
    from pykickstart.parser import KickstartParser
    from pykickstart.version import RHEL7, makeVersion

    handler = makeVersion(RHEL7)
    KickstartParser(handler).readKickstartFromString(text)
    return handler


def test_rendered_kickstart_is_valid_rhel7_with_both_nics_by_mac():
    text = render_kickstart(INPUTS)
    validate_kickstart(text)
    handler = parsed(text)
    devices = {nd.device: nd for nd in handler.network.network if nd.device}
    assert devices["52:54:00:00:00:01"].bootProto == "dhcp"
    management = devices["52:54:00:00:00:02"]
    assert (management.bootProto, management.ip, management.netmask) == (
        "static", "192.168.70.2", "255.255.255.0")
    assert management.nodefroute
    assert any(nd.hostname == "controller" for nd in handler.network.network)
    assert handler.selinux.selinux == 0  # disabled
    assert handler.firewall.enabled is False
    assert "chrony" in handler.packages.packageList
    assert "minimal" in handler.packages.environment


def test_root_password_is_only_a_sha512_hash():
    text = render_kickstart(INPUTS)
    assert "Root-Pass-99" not in text
    handler = parsed(text)
    assert handler.rootpw.isCrypted and handler.rootpw.password.startswith("$6$")
    assert sha512_crypt.verify("Root-Pass-99", handler.rootpw.password)


def test_post_installs_the_key_and_calls_back():
    text = render_kickstart(INPUTS)
    post = parsed(text).scripts[0].script
    assert "ssh-ed25519 AAAAkey t" in post and "chmod 0600 /root/.ssh/authorized_keys" in post
    assert 'curl -fsS -m 10 -X POST "http://10.0.2.2:8080/token/done"' in post


def test_an_invalid_kickstart_is_an_error_naming_the_line():
    text = render_kickstart(INPUTS).replace("selinux --disabled", "selinux --sometimes")
    with pytest.raises(KickstartError, match="line"):
        validate_kickstart(text)


def test_masking_hides_the_hash_and_secrets():
    text = render_kickstart(INPUTS)
    masked = mask_secrets(text, ["AAAAkey"])
    assert "$6$" not in masked and "rootpw --iscrypted ********" in masked
    assert "AAAAkey" not in masked

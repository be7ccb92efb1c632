"""Fixtures for labs on real libvirt networks, in a network namespace of the test's own.

``netns_libvirtd`` starts a private libvirtd (and virtlogd) in a mount + network namespace
with a slirp4netns uplink (tests/private_libvirtd.py); libvirt's NAT and isolated networks,
their dnsmasq and iptables rules, and the guests all live there. ``vmlab_netns`` runs the
real CLI inside it, where ``qemu:///system`` is that daemon and the guests' private
addresses are reachable. The host's interfaces, routes and firewall rules are read before
the namespace is made (``host_network_before``), for the test to compare at its end.
"""
from __future__ import annotations

from typing import Iterator

import pytest

from tests import host_network
from tests.lab_harness import Vmlab
from tests.private_libvirtd import PrivateLibvirtd


@pytest.fixture(scope="session")
def host_network_before() -> host_network.HostNetwork:
    """The host's network as it was before any namespace of this session was made."""
    return host_network.snapshot()


@pytest.fixture(scope="session")
def netns_libvirtd(host_network_before) -> Iterator[PrivateLibvirtd]:
    # pools on disk, not a tmpfs: the guest images and the guests' snapshots are large
    daemon = PrivateLibvirtd(images_size=None, network=True)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def vmlab_netns(netns_libvirtd: PrivateLibvirtd, vmlab_home) -> Vmlab:
    """The CLI, run inside the namespace (in the test's working directory)."""
    return Vmlab(vmlab_home, prefix=tuple(netns_libvirtd.nsenter()) + ("--",))

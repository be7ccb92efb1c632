"""The name servers a guest uses: the profile's, or the provider network's own resolver.

Which resolver a guest reaches follows from the kind of its provider network, as the
hypervisor's driver knows it (``DriverKind.guest_resolver``):

- a libvirt ``nat`` (or ``isolated``) network: libvirt's dnsmasq, on the network's own
  address (vmlab gives the hypervisor's end the subnet's first host, as libvirt's
  ``default`` network has 192.168.122.1);
- a ``user``-mode NIC: QEMU's built-in resolver, the subnet's fourth address (10.0.2.3 on
  QEMU's default 10.0.2.0/24);
- vSphere: whatever the port group's DHCP server hands out (None here: the guest keeps
  the DHCP lease's servers).

``vm.dns`` in the profile overrides all of these (the install manual's 114.114.114.114 is
used only when a profile sets it).
"""
from __future__ import annotations

import ipaddress

from vmlab.profile import Profile

IPv4 = ipaddress.IPv4Address


def guest_dns(profile: Profile) -> tuple[IPv4, ...] | None:
    """The guest's name servers; None when they come from the provider network's DHCP."""
    if profile.vm.dns is not None:
        return profile.vm.dns
    provider = profile.vm.nic("provider")
    assert provider is not None  # the profile model requires one
    from vmlab import drivers
    from vmlab.vmspec import network_spec

    resolver = drivers.kind(profile.hypervisor.kind).guest_resolver(network_spec("", provider))
    return (resolver,) if resolver is not None else None

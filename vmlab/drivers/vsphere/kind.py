"""The vSphere driver's knowledge before it connects (see vmlab.drivers.kinds): no pyVmomi
here, so a vSphere lab's URI is named and its password looked up without the extra."""
from __future__ import annotations

import os
from typing import Any

from vmlab.drivers.kinds import Capabilities, DriverKind, Section
from vmlab.errors import UsageError
from vmlab.names import check_port_group

#: The section's keys that are constructor arguments of VsphereDriver as they are.
_PASSED = ("host", "port", "user", "insecure", "datacenter", "cluster", "host_system",
           "datastore", "folder")


class VsphereKind(DriverKind):
    name = "vsphere"
    # vSphere cannot boot a kernel directly nor base a disk on a local image; the guest
    # needs VMware tools for vSphere to see its addresses and shut it down; a port group
    # has no resolver of its own (the guest keeps the DHCP lease's servers).
    capabilities = Capabilities(kernel_boot=False, disk_from_image=False,
                                guest_packages=("open-vm-tools",), network_resolver=False)
    driver = ("vmlab.drivers.vsphere.driver", "VsphereDriver")
    reader = driver  # the vSphere driver loads no more for reading

    def options(self, section: Section) -> dict[str, Any]:
        return {"password": password(section), **{key: section[key] for key in _PASSED}}

    def uri(self, section: Section) -> str:
        return f"vsphere://{section['user']}@{section['host']}:{section['port']}"

    def check_network_name(self, value: object) -> str:
        return check_port_group("network name", value)  # a port group may hold spaces


def password(section: Section) -> str:
    """The password, from the environment variable the section names (a profile holds only
    that variable's name: a password in a file would end up in backups and diffs)."""
    variable = section["password_env"]
    value = os.environ.get(variable)
    if not value:
        raise UsageError(f"no vSphere password: ${variable} is not set",
                         hint=f"export {variable}=... and run again")
    return value


KIND = VsphereKind()

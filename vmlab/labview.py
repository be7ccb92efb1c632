"""The read-only commands' way into a lab (`vmlab status`, `snapshots`, `ssh`, `ssh-config`):
its state as JSON data (``LabFiles.read``) and the reading part of its driver, connected to
the hypervisor the state records. Neither pydantic, the profile nor a driver's builders are
imported: these commands answer in about the time the interpreter and libvirt take to load.
"""
from __future__ import annotations

import os
from typing import Any

from vmlab import drivers
from vmlab.errors import NotFound, NotOwned, UsageError
from vmlab.sshtarget import Target


def driver_options(hypervisor: dict[str, Any], password: str | None = None) -> dict[str, Any]:
    """Connection options for vmlab.drivers.connect() from a hypervisor section as JSON data
    (a profile's, or the one a lab's state recorded)."""
    if hypervisor["kind"] == "libvirt":
        return {"uri": hypervisor["uri"], "pool": hypervisor["pool"]}
    if hypervisor["kind"] == "vsphere":
        return {"password": password, **{key: hypervisor[key] for key in (
            "host", "port", "user", "insecure", "datacenter", "cluster", "host_system",
            "datastore", "folder")}}
    raise AssertionError(f"unhandled hypervisor {hypervisor!r}")


def password(hypervisor: dict[str, Any]) -> str | None:
    """The vSphere password, from the environment variable the section names."""
    if hypervisor["kind"] != "vsphere":
        return None
    variable = hypervisor["password_env"]
    value = os.environ.get(variable)
    if not value:
        raise UsageError(f"no vSphere password: ${variable} is not set",
                         hint=f"export {variable}=... and run again")
    return value


def open_reader(hypervisor: dict[str, Any]) -> Any:
    """The reading part of the driver of a lab's hypervisor section (a context manager)."""
    return drivers.connect_reader(hypervisor["kind"],
                                  **driver_options(hypervisor, password(hypervisor)))


def lab_vm(reader: Any, lab: str, vm_name: str) -> Any:
    """Lab ``lab``'s VM (a VMRef): NotFound when it is gone, NotOwned when it is not the
    lab's."""
    ref = reader.find(vm_name)
    if ref is None:
        raise NotFound(f"the VM {vm_name!r} of lab {lab!r} no longer exists on the hypervisor",
                       hint=f"remove what is left with `vmlab destroy --lab {lab}` and create "
                            "the lab again")
    if ref.lab != lab:
        raise NotOwned(f"the VM {ref.name!r} is not tagged as lab {lab!r}'s",
                       hint="vmlab only touches VMs it created")
    return ref


def ssh_target(lab: str | None) -> Target:
    """How to reach lab ``lab``'s guest (default: the only lab) over SSH."""
    from vmlab.paths import resolve_lab_name
    from vmlab.state import LabFiles

    files = LabFiles(resolve_lab_name(lab))
    state = files.read()
    with open_reader(state["hypervisor"]) as reader:
        ref = lab_vm(reader, files.lab, state["vm_name"])
        endpoint = reader.ssh_endpoint(ref, state["ssh"]["port"])
    return Target(host=endpoint.host, port=endpoint.port, user=state["ssh"]["user"],
                  key_file=files.ssh_key, known_hosts=files.known_hosts, jump=endpoint.jump)

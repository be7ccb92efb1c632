"""The read-only commands' way into a lab (`vmlab status`, `snapshots`, `ssh`, `ssh-config`):
its state as JSON data (``LabFiles.read``) and the reading part of its driver, connected to
the hypervisor the state records. Neither pydantic, the profile nor a driver's builders are
imported: these commands answer in about the time the interpreter and libvirt take to load.
"""
from __future__ import annotations

from typing import Any

from vmlab import drivers
from vmlab.errors import NotFound, NotOwned
from vmlab.sshtarget import Target


def open_reader(hypervisor: dict[str, Any]) -> Any:
    """The reading part of the driver of a lab's hypervisor section (a context manager)."""
    return drivers.open_reader(hypervisor)


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

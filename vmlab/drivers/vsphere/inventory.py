"""Where VMs go: datacenter, cluster or host, resource pool, datastore and VM folder.

Each is named in the profile or, when not named, the only one there is. A name that is not
found, or several to choose from, is an error naming what exists.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyVmomi import vim

from vmlab.drivers.vsphere.session import retrieve
from vmlab.errors import DriverError


@dataclass(frozen=True)
class Placement:
    datacenter: vim.Datacenter
    host: vim.HostSystem
    pool: vim.ResourcePool
    datastore: vim.Datastore
    folder: vim.Folder

    @property
    def datastore_name(self) -> str:
        return self.datastore.name


def pick(candidates: list[tuple[Any, str]], wanted: str | None, what: str, setting: str,
         where: str = "") -> Any:
    """The candidate named ``wanted``, or the only one; errors name what exists."""
    names = ", ".join(sorted(name for _, name in candidates)) or "none"
    if wanted is None:
        if len(candidates) == 1:
            return candidates[0][0]
        if not candidates:
            raise DriverError(f"vSphere has no {what}{where}",
                              hint=f"create a {what} first, or connect to another vSphere")
        raise DriverError(f"there are {len(candidates)} {what}s{where} to choose from: {names}",
                          hint=f"name one with `{setting}:` in the profile's hypervisor section")
    for obj, name in candidates:
        if name == wanted:
            return obj
    raise DriverError(f"no {what} named {wanted!r}{where}; there are: {names}",
                      hint=f"set `{setting}:` in the profile's hypervisor section to one of them")


def _named(si: vim.ServiceInstance, root: Any, kind: type) -> list[tuple[Any, str]]:
    return [(obj, props.get("name", "")) for obj, props in retrieve(si, root, kind, ["name"])]


def resolve(si: vim.ServiceInstance, datacenter: str | None, cluster: str | None,
            host_system: str | None, datastore: str | None, folder: str | None) -> Placement:
    content = si.content
    dc = pick(_named(si, content.rootFolder, vim.Datacenter), datacenter, "datacenter",
              "datacenter")
    where_dc = f" in datacenter {dc.name!r}"
    if cluster is not None:
        compute = pick(_named(si, dc.hostFolder, vim.ClusterComputeResource), cluster,
                       "cluster", "cluster", where_dc)
        hosts = [(h, h.name) for h in compute.host]
        host = pick(hosts, host_system, "host", "host_system", f" in cluster {compute.name!r}")
    else:
        host = pick(_named(si, dc.hostFolder, vim.HostSystem), host_system, "host",
                    "host_system", where_dc)
        compute = host.parent
    pool = compute.resourcePool
    store = pick([(d, d.name) for d in host.datastore], datastore, "datastore", "datastore",
                 f" on host {host.name!r}")
    return Placement(dc, host, pool, store, _folder(si, dc, folder))


def _folder(si: vim.ServiceInstance, dc: vim.Datacenter, wanted: str | None) -> vim.Folder:
    """The datacenter's VM folder, a VM folder by name, or by path ("labs/vmlab")."""
    root = dc.vmFolder
    if wanted is None:
        return root
    rows = retrieve(si, root, vim.Folder, ["name", "parent", "childType"])
    folders = {obj: props for obj, props in rows
               if "VirtualMachine" in (props.get("childType") or [])}

    def path(obj: Any) -> str:
        parts = []
        while obj in folders:
            parts.append(folders[obj]["name"])
            obj = folders[obj].get("parent")
        return "/".join(reversed(parts))

    paths = {path(obj): obj for obj in folders}
    wanted = wanted.strip("/")
    if wanted in paths:
        return paths[wanted]
    by_name = [obj for obj, props in folders.items() if props["name"] == wanted]
    if len(by_name) == 1:
        return by_name[0]
    existing = ", ".join(sorted(paths)) or "none"
    if by_name:
        raise DriverError(f"{len(by_name)} VM folders are named {wanted!r} in datacenter "
                          f"{dc.name!r}: {existing}",
                          hint="give the folder's path from the datacenter, e.g. labs/vmlab")
    raise DriverError(f"no VM folder {wanted!r} in datacenter {dc.name!r}; there are: "
                      f"{existing}",
                      hint="create it in vSphere, or set `folder:` in the profile's hypervisor "
                           "section to one of them")

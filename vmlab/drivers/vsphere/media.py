"""CD-ROM images on the datastore, uploaded over HTTPS with the session's cookie.

Files go to ``vmlab-media/<stem>-<sha256 prefix><suffix>``: the name carries the content's
hash, so an upload is skipped only when the very same file (same name, same size) is already
there, and a changed kickstart ISO of the same size is never mistaken for the old one.
"""
from __future__ import annotations

import http.client
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote

from pyVmomi import vim, vmodl

from vmlab.drivers.base import ProgressFn
from vmlab.drivers.vsphere.session import TaskFailed, fault_text, ssl_context, wait_task
from vmlab.errors import DriverError, InfrastructureError
from vmlab.iso import file_sha256

MEDIA_DIR = "vmlab-media"
BLOCK = 1 << 20


def remote_name(local: Path) -> str:
    return f"{MEDIA_DIR}/{local.stem}-{file_sha256(local)[:16]}{local.suffix}"


class DatastoreFiles:
    """Files on one datastore of one datacenter, through the host's /folder URLs."""

    def __init__(self, si: vim.ServiceInstance, host: str, port: int, insecure: bool,
                 datacenter: vim.Datacenter, datastore: vim.Datastore) -> None:
        self.si, self.host, self.port, self.insecure = si, host, port, insecure
        self.datacenter, self.datastore = datacenter, datastore

    def path(self, remote: str) -> str:
        """The datastore path vSphere's API uses: ``[datastore] dir/file``."""
        return f"[{self.datastore.name}] {remote}"

    def _url(self, remote: str) -> str:
        return (f"/folder/{quote(remote)}?dcPath={quote(self.datacenter.name)}"
                f"&dsName={quote(self.datastore.name)}")

    def _cookie(self) -> str:
        jar = SimpleCookie(self.si._stub.cookie)
        return "; ".join(f"{key}={morsel.value}" for key, morsel in jar.items())

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port,
                                           context=ssl_context(self.insecure), timeout=60)

    def size(self, remote: str) -> int | None:
        """The file's size, or None when it is not there."""
        connection = self._connection()
        try:
            connection.request("HEAD", self._url(remote), headers={"Cookie": self._cookie()})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                return None
            length = response.getheader("Content-Length")
            return int(length) if length is not None else None
        except (OSError, http.client.HTTPException) as exc:
            raise InfrastructureError(f"cannot read {self.path(remote)} from the datastore: "
                                      f"{exc}") from exc
        finally:
            connection.close()

    def upload(self, local: Path, remote: str, progress: ProgressFn) -> None:
        """PUT ``local`` to ``remote`` (relative to the datastore's root)."""
        size = local.stat().st_size
        self._make_dir(remote.rsplit("/", 1)[0])
        connection = self._connection()
        try:
            connection.putrequest("PUT", self._url(remote))
            connection.putheader("Cookie", self._cookie())
            connection.putheader("Content-Length", str(size))
            connection.putheader("Content-Type", "application/octet-stream")
            connection.endheaders()
            sent, reported = 0, -1
            with local.open("rb") as handle:
                for block in iter(lambda: handle.read(BLOCK), b""):
                    connection.send(block)
                    sent += len(block)
                    percent = sent * 100 // max(size, 1)
                    if percent >= reported + 10 or sent == size:
                        reported = percent
                        progress(f"uploading {local.name} to {self.datastore.name}: {percent}%")
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise InfrastructureError(f"uploading {local.name} to datastore "
                                      f"{self.datastore.name} failed: {exc}",
                                      hint="check the network to the vSphere host") from exc
        finally:
            connection.close()
        if response.status not in (200, 201, 204):
            raise DriverError(f"uploading {local.name} to datastore {self.datastore.name} "
                              f"failed: HTTP {response.status} {response.reason}",
                              hint="the vSphere user needs Datastore > Low level file "
                                   "operations")

    def _make_dir(self, remote_dir: str) -> None:
        try:
            self.si.content.fileManager.MakeDirectory(name=self.path(remote_dir),
                                                      datacenter=self.datacenter,
                                                      createParentDirectories=True)
        except vim.fault.FileAlreadyExists:
            pass

    def delete(self, path: str) -> None:
        """Remove a file by its datastore path; one that is already gone is fine."""
        manager = self.si.content.fileManager
        try:
            task = manager.DeleteDatastoreFile_Task(name=path, datacenter=self.datacenter)
        except vim.fault.FileNotFound:
            return
        except vmodl.MethodFault as exc:
            raise DriverError(f"removing {path} failed: {fault_text(exc)}") from exc
        try:
            wait_task(task, f"removing {path}", timeout=120)
        except TaskFailed as exc:
            if not isinstance(exc.fault, vim.fault.FileNotFound):
                raise

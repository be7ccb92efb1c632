"""The pyVmomi session: logging in, vSphere faults as vmlab errors, tasks with a deadline,
and property reads in one round trip."""
from __future__ import annotations

import functools
import http.client
import ssl
import time
from typing import Any, Callable, TypeVar

from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl

from vmlab.drivers.base import VMRef, VMSpec
from vmlab.errors import DriverError, InfrastructureError, VmlabError, WaitTimeout

#: Longest wait for one vSphere task (creating a VM, a snapshot with memory, ...).
TASK_TIMEOUT = 600.0
#: Socket timeout of one SOAP request (tasks are polled, so requests are short).
REQUEST_TIMEOUT = 60

F = TypeVar("F", bound=Callable[..., Any])


def fault_text(fault: object) -> str:
    """The most useful sentence a vSphere fault carries."""
    for attribute in ("msg", "localizedMessage"):
        text = getattr(fault, attribute, None)
        if text and not str(text).startswith("*types."):  # vcsim puts Go type names there
            return str(text)
    for message in getattr(fault, "faultMessage", None) or []:
        if getattr(message, "message", None):
            return str(message.message)
    name = type(fault).__name__.rsplit(".", 1)[-1]
    details = [f"{key} {getattr(fault, key)!r}"
               for key in ("property", "invalidProperty", "name", "file", "datastore")
               if getattr(fault, key, None)]
    return f"{name} ({', '.join(details)})" if details else name


def ssl_context(insecure: bool) -> ssl.SSLContext:
    if insecure:  # asked for in the profile (`insecure: true`)
        return ssl._create_unverified_context()  # noqa: S323
    return ssl.create_default_context()


def connect(host: str, port: int, user: str, password: str | None,
            insecure: bool) -> vim.ServiceInstance:
    where = f"{host}:{port}"
    try:
        return SmartConnect(host=host, port=port, user=user, pwd=password or "",
                            sslContext=ssl_context(insecure),
                            httpConnectionTimeout=REQUEST_TIMEOUT)
    except vim.fault.InvalidLogin as exc:
        raise DriverError(f"vSphere at {where} refused the login of {user!r}",
                          hint="check the user and the password in the environment variable "
                               "the profile names (password_env)") from exc
    except ssl.SSLCertVerificationError as exc:
        raise InfrastructureError(
            f"the TLS certificate of {where} is not trusted: {exc.verify_message}",
            hint="install its CA on this machine, or set `insecure: true` in the profile's "
                 "hypervisor section") from exc
    except vmodl.MethodFault as exc:
        raise DriverError(f"vSphere at {where} refused the connection: {fault_text(exc)}",
                          hint="check the user's permissions and the vSphere version") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise InfrastructureError(f"cannot reach vSphere at {where}: {exc}",
                                  hint=f"check the address (the profile's hypervisor host "
                                       f"{host!r} and port {port}: 443 for vCenter and ESXi) "
                                       "and the network between here and there") from exc


def translated(what: str) -> Callable[[F], F]:
    """Turn vSphere faults and lost connections inside a driver method into vmlab errors."""
    def decorate(method: F) -> F:
        @functools.wraps(method)
        def wrapper(self, *args: Any, **kwargs: Any) -> Any:
            doing = what
            if args and isinstance(args[0], (VMRef, VMSpec)):
                doing = f"{what} {args[0].name!r}"
            try:
                return method(self, *args, **kwargs)
            except VmlabError:
                raise
            except vim.fault.NotAuthenticated as exc:
                raise DriverError(f"{doing}: the vSphere session is no longer valid",
                                  hint="it may have expired; run the command again") from exc
            except vim.fault.NoPermission as exc:
                privilege = getattr(exc, "privilegeId", "") or "needed"
                raise DriverError(f"{doing}: vSphere denied the {privilege} privilege",
                                  hint="give the vSphere user that privilege") from exc
            except vmodl.MethodFault as exc:
                raise DriverError(f"{doing} failed: {fault_text(exc)}") from exc
            except (OSError, http.client.HTTPException) as exc:
                raise InfrastructureError(f"{doing}: lost the connection to vSphere at "
                                          f"{self.host}:{self.port}: {exc}",
                                          hint="check the network and run again") from exc
        return wrapper  # type: ignore[return-value]
    return decorate


class TaskFailed(DriverError):
    """A vSphere task ended with a fault (kept in ``fault``)."""

    def __init__(self, message: str, fault: object, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.fault = fault


def wait_task(task: vim.Task, what: str, timeout: float = TASK_TIMEOUT) -> Any:
    """Wait for a task; its fault becomes a DriverError, the deadline a WaitTimeout."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise TaskFailed(f"{what} failed: {fault_text(info.error)}", info.error)
        if time.monotonic() > deadline:
            if info.cancelable:
                try:
                    task.CancelTask()
                except vmodl.MethodFault:
                    pass
            raise WaitTimeout(f"{what} did not finish within {timeout:.0f}s",
                              hint="see the task in the vSphere client; the host may be busy")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def retrieve(si: vim.ServiceInstance, root: vim.ManagedEntity, kind: type,
             paths: list[str]) -> list[tuple[Any, dict[str, Any]]]:
    """(object, {property: value}) for every ``kind`` below ``root``, in one round trip.

    Unset properties are absent from the dict.
    """
    content = si.content
    view = content.viewManager.CreateContainerView(root, [kind], True)
    collector = content.propertyCollector
    query = vmodl.query.PropertyCollector
    try:
        spec = query.FilterSpec(
            objectSet=[query.ObjectSpec(obj=view, skip=True, selectSet=[query.TraversalSpec(
                name="view", path="view", skip=False, type=vim.view.ContainerView)])],
            propSet=[query.PropertySpec(type=kind, pathSet=paths, all=False)])
        result = collector.RetrievePropertiesEx([spec], query.RetrieveOptions())
        rows: list[tuple[Any, dict[str, Any]]] = []
        while result is not None:
            for found in result.objects:
                rows.append((found.obj, {p.name: p.val for p in found.propSet or []}))
            if not result.token:
                break
            result = collector.ContinueRetrievePropertiesEx(result.token)
        return rows
    finally:
        view.Destroy()

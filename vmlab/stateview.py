"""A lab's state file as plain JSON data, checked without pydantic.

`vmlab status`, `snapshots`, `ssh-config` and `openrc` only read a lab's state; importing
pydantic and building the model (with the profile's models it embeds) would cost them more
than all the rest of their work. So ``plain`` accepts exactly the files vmlab itself writes
(``LabFiles.save``: every key of schema version 3 with its JSON type, dates in pydantic's
own form), with left-out keys that have a default filled in, and returns what
``LabState.model_validate(raw).model_dump(mode="json")`` would. Anything else (a version 1
file, a hand edit, a wrong type, an unknown key) gives None, and the caller goes through the
model, which migrates, validates and names the problem. tests/test_stateview.py proves
the two agree, and that every key of the model is checked here.
"""
from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Callable

from vmlab.names import HYPERVISOR_NAME_RE, is_lab_name

#: A check: the value itself (a JSON object with its defaults filled in) or BAD.
Check = Callable[[Any], Any]
BAD = object()
#: The key is required: it has no default.
REQUIRED = object()

#: A UTC time as pydantic writes it: whole seconds, or six digits of them, and "Z".
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.(?!000000)\d{6})?Z")


def _when(test: Callable[[Any], bool]) -> Check:
    return lambda value: value if test(value) else BAD


_str = _when(lambda value: type(value) is str)
_int = _when(lambda value: type(value) is int)
_bool = _when(lambda value: type(value) is bool)
_float = _when(lambda value: type(value) is float and math.isfinite(value))
_pool = _when(lambda value: type(value) is str
              and re.fullmatch(HYPERVISOR_NAME_RE, value) is not None)
_lab = _when(is_lab_name)


def _int_in(low: int, high: int) -> Check:
    return _when(lambda value: type(value) is int and low <= value <= high)


def _one_of(*choices: str) -> Check:
    return _when(lambda value: type(value) is str and value in choices)


def _optional(check: Check) -> Check:
    return lambda value: None if value is None else check(value)


def _is_datetime(value: Any) -> bool:
    if type(value) is not str or not _DATETIME.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


_datetime = _when(_is_datetime)


def _object(fields: dict[str, tuple[Check, Any]]) -> Check:
    """A JSON object with no key but ``fields`` (name -> (check, default or REQUIRED))."""
    def check(value: Any) -> Any:
        if type(value) is not dict or not set(value) <= set(fields):
            return BAD
        result: dict[str, Any] = {}
        for name, (check_value, default) in fields.items():
            if name not in value:
                if default is REQUIRED:
                    return BAD
                result[name] = list(default) if type(default) is list else default
            elif (result.setdefault(name, check_value(value[name]))) is BAD:
                return BAD
        return result
    return check


def _list_of(check: Check) -> Check:
    def check_list(value: Any) -> Any:
        if type(value) is not list:
            return BAD
        items = [check(item) for item in value]
        return BAD if any(item is BAD for item in items) else items
    return check_list


def _by_kind(kinds: dict[str, Check]) -> Check:
    """A discriminated union: the object's "kind" picks its field table."""
    def check(value: Any) -> Any:
        if type(value) is not dict or type(value.get("kind")) is not str:
            return BAD
        branch = kinds.get(value["kind"])
        return branch(value) if branch is not None else BAD
    return check


#: vmlab.profile.LibvirtHypervisor, VsphereHypervisor, Ssh and Snapshots; the state's
#: StageRecord and LabState (vmlab.statemodel).
LIBVIRT = {"kind": (_one_of("libvirt"), REQUIRED), "uri": (_str, "qemu:///system"),
           "pool": (_pool, "vmlab")}
VSPHERE = {"kind": (_one_of("vsphere"), REQUIRED), "host": (_str, REQUIRED),
           "port": (_int_in(1, 65535), 443), "user": (_str, REQUIRED),
           "password_env": (_str, "VMLAB_VSPHERE_PASSWORD"), "insecure": (_bool, False),
           "datacenter": (_optional(_str), None), "cluster": (_optional(_str), None),
           "host_system": (_optional(_str), None), "datastore": (_optional(_str), None),
           "folder": (_optional(_str), None)}
SSH = {"user": (_str, "root"), "port": (_int_in(1, 65535), 22),
       "command_timeout_minutes": (_int_in(1, 24 * 60), 60)}
SNAPSHOTS = {"mode": (_one_of("offline", "live"), "offline")}
STAGE = {"name": (_str, REQUIRED),
         "status": (_one_of("pending", "running", "done", "failed"), "pending"),
         "attempts": (_int, 0), "started": (_optional(_datetime), None),
         "finished": (_optional(_datetime), None), "duration": (_optional(_float), None),
         "log": (_optional(_str), None), "error": (_optional(_str), None),
         "fingerprint": (_optional(_str), None), "plan_hash": (_optional(_str), None)}
STATE = {
    "schema_version": (_int_in(3, 3), 3), "lab": (_lab, REQUIRED),
    "profile": (_str, REQUIRED), "profile_path": (_str, REQUIRED),
    "driver": (_str, REQUIRED), "uri": (_str, REQUIRED),
    "hypervisor": (_by_kind({"libvirt": _object(LIBVIRT), "vsphere": _object(VSPHERE)}),
                   REQUIRED),
    "ssh": (_object(SSH), REQUIRED), "snapshots": (_object(SNAPSHOTS), REQUIRED),
    "platform": (_optional(_str), None), "vm_name": (_str, REQUIRED),
    "vm_uuid": (_optional(_str), None), "acceleration": (_optional(_str), None),
    "created": (_datetime, REQUIRED), "stages": (_list_of(_object(STAGE)), REQUIRED),
    "drift_key": (_optional(_str), None), "drift_files": (_list_of(_str), []),
}

_state = _object(STATE)


def plain(raw: Any) -> dict[str, Any] | None:
    """``raw`` as the model would give it back (defaults filled in), when that is certain
    without the model; None when only the model can tell."""
    data = _state(raw)
    return None if data is BAD else data

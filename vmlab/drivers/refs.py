"""What a driver hands back about a VM: its reference, power state, snapshots and SSH
endpoint. Kept apart from the driver contract (vmlab.drivers.base) so that the read-only
commands, which only read these, import no more than they need."""
from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from vmlab.errors import NotOwned

T = TypeVar("T")


class PowerState(str, enum.Enum):
    RUNNING = "running"
    SHUTOFF = "shutoff"
    PAUSED = "paused"
    OTHER = "other"


@dataclass(frozen=True)
class VMRef:
    driver: str
    name: str
    uuid: str
    lab: str | None  # None: the VM carries no vmlab ownership tag


@dataclass(frozen=True)
class Snapshot:
    name: str
    parent: str | None
    created: datetime
    state: PowerState
    description: str = ""
    current: bool = False


@dataclass(frozen=True)
class Endpoint:
    """Where the guest's SSH answers, and through which host when not directly."""

    host: str
    port: int
    #: ssh jump host as (user, host, port, keyfile or None) when the hypervisor is remote.
    jump: tuple[str, str, int, str | None] | None = None


@dataclass(frozen=True)
class Glance:
    """A VM as `vmlab status` shows it, seen in one look: its power state, snapshots,
    console log and, when it runs, where its SSH answers."""

    ref: VMRef
    power: PowerState
    snapshots: tuple[Snapshot, ...]
    console_log: str | None
    endpoint: Endpoint | None


def require_tag(name: str, tag: T | None) -> T:
    """The ownership tag of VM ``name``; NotOwned when it has none (vmlab never changes,
    nor reads the snapshots of, a VM it did not make)."""
    if tag is None:
        raise NotOwned(f"VM {name!r} carries no vmlab ownership tag: not touching it",
                       hint="vmlab only acts on VMs it created")
    return tag

"""Garbage collection: vmlab-owned VMs (with their disks and networks) whose lab is gone,
or older than a limit, and on request the uploaded guest images no disk is built on any
more. Nothing without vmlab's ownership tag (or, for an image, its base-volume name in
vmlab's pool) is ever considered."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from vmlab import paths
from vmlab.drivers.base import Driver, OwnedObject
from vmlab.errors import NotFound, UsageError, VmlabError

# Why a listed object was left alone when its turn came (not an error).
SKIPPED_VM = "gone since it was listed, or the name is now another lab's VM"
SKIPPED_IMAGE = "a disk is built on it since it was listed, or it is gone"


def parse_age(text: str) -> timedelta:
    """'2d', '12h', '30m' -> a timedelta."""
    match = re.fullmatch(r"(\d+)([dhm])", text.strip())
    if not match:
        raise UsageError(f"invalid age {text!r}", hint="use a number and d, h or m, e.g. 2d")
    value, unit = int(match.group(1)), match.group(2)
    return timedelta(**{{"d": "days", "h": "hours", "m": "minutes"}[unit]: value})


def find_garbage(driver: Driver, older_than: timedelta | None = None) -> list[dict]:
    """The owned VMs to remove, each with what goes with it and why."""
    labs = set(paths.list_labs())
    now = datetime.now(timezone.utc)
    home = paths.home_id()
    owned = [o for o in driver.list_owned() if o.home == home]  # other homes' labs: never
    rows = []
    for vm in (o for o in owned if o.kind == "vm"):
        reasons = []
        if vm.lab not in labs:
            reasons.append(f"lab {vm.lab!r} no longer exists")
        if older_than is not None and vm.created is not None and now - vm.created > older_than:
            reasons.append(f"older than {older_than}")
        if reasons:
            rows.append({"vm": vm.name, "lab": vm.lab, "reason": "; ".join(reasons),
                         "created": vm.created.isoformat() if vm.created else None,
                         "with": [f"{o.kind} {o.name}" for o in _belonging(owned, vm)]})
    return rows


def _belonging(owned: list[OwnedObject], vm: OwnedObject) -> list[OwnedObject]:
    return [o for o in owned if o.kind != "vm" and o.lab == vm.lab]


def collect(driver: Driver, rows: list[dict]) -> list[str]:
    """Destroy the VMs of ``rows`` (and with them their disks and networks); errors listed.
    A row whose VM changed since it was listed is marked ``skipped`` with the reason."""
    problems = []
    for row in rows:
        ref = driver.find(row["vm"])
        if ref is None or ref.lab != row["lab"]:
            row["skipped"] = SKIPPED_VM
            continue
        try:
            driver.destroy(ref)
        except VmlabError as exc:
            problems.append(f"{row['vm']}: {exc.message}")
    return problems


def find_unused_images(driver: Driver, older_than: timedelta) -> list[dict]:
    """Uploaded guest images that no disk is built on, uploaded more than ``older_than``
    ago (a create may be about to build on a newer one)."""
    return [{"image": image.name, "reason": "no disk is built on it",
             "created": image.created.isoformat(timespec="seconds") if image.created else None}
            for image in driver.unused_images(older_than)]


def collect_images(driver: Driver, rows: list[dict]) -> list[str]:
    """Delete the images of ``rows``, each checked unused again just before; errors listed.
    An image a create has built on meanwhile is not an error: its row is marked ``skipped``."""
    problems = []
    for row in rows:
        try:
            driver.delete_image(row["image"])
        except NotFound:
            row["skipped"] = SKIPPED_IMAGE
        except VmlabError as exc:
            problems.append(f"{row['image']}: {exc.message}")
    return problems

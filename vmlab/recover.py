"""A way back when a lab's state file is corrupt or missing but its VM still exists:
the state is rebuilt from the hypervisor (the VM's ownership tag and its snapshots)."""
from __future__ import annotations

import shutil

from vmlab.errors import NotFound, NotOwned, UsageError
from vmlab.lab import COMPLETE, open_driver
from vmlab.names import check_lab_name
from vmlab.profile import load_profile
from vmlab.state import LabFiles, now
from vmlab.statemodel import LabState, StageRecord
from vmlab.vmspec import hypervisor_uri, vm_name


def recover(lab: str, profile: str) -> LabState:
    """Write a new state file for ``lab`` from what the hypervisor says.

    A stage counts as done when the snapshot of the stage after it (or `complete`) exists:
    that snapshot was taken after it ran. Everything else is pending.
    """
    files = LabFiles(check_lab_name(lab))
    loaded = load_profile(profile)
    forget = f"`vmlab destroy --forget --lab {lab}`"
    if not files.root.is_dir():
        raise NotFound(f"lab {lab!r} has no files here, so there is nothing to recover",
                       hint=f"create it: `vmlab create --profile {profile} --lab {lab}`")
    if not files.ssh_key.is_file():
        raise UsageError(f"lab {lab!r} lost its SSH key; its VM cannot be reached",
                         hint=f"drop the lab's files ({forget}), then remove its VM "
                              f"(`vmlab gc --profile {profile} --yes` finds it) and create "
                              "the lab again")
    where = hypervisor_uri(loaded.profile.hypervisor)
    with files.lock("recover"):
        with open_driver(loaded.profile.hypervisor) as driver:
            ref = driver.find(vm_name(lab))
            if ref is None:
                raise NotFound(f"no VM {vm_name(lab)!r} on {where}, so there is nothing to "
                               "recover", hint=f"drop the lab's files ({forget}), then create "
                                               f"it again: `vmlab create --profile {profile} "
                                               f"--lab {lab}`")
            if ref.lab != lab:
                raise NotOwned(f"VM {ref.name!r} on {where} is not tagged as lab {lab!r}'s",
                               hint="vmlab only adopts VMs it created for that lab")
            snapshots = {s.name for s in driver.snapshot_list(ref)}
            accel = driver.acceleration()
        names = loaded.profile.stage_names
        records = []
        for index, name in enumerate(names):
            later = names[index + 1] if index + 1 < len(names) else COMPLETE
            records.append(StageRecord(name=name,
                                       status="done" if later in snapshots else "pending"))
        if files.state.is_file():
            broken = files.state.with_name("state.json.broken")
            shutil.copyfile(files.state, broken)
        state = LabState(lab=lab, profile=loaded.profile.name, profile_path=str(loaded.path),
                         driver=driver.kind, uri=where, hypervisor=loaded.profile.hypervisor,
                         ssh=loaded.profile.ssh, snapshots=loaded.profile.snapshots,
                         platform=loaded.profile.platform, vm_name=ref.name, vm_uuid=ref.uuid,
                         acceleration=accel, created=now(), stages=records)
        files.save(state)
    return state

"""A lab's profile, read again only by the commands that run its stages (provision,
resume). Everything else about an existing lab comes from its state file, so an edited or
moved profile never locks a lab out; here, a profile that broke or moved is named, with what
to do, and changes a lab that exists does not take on are said."""
from __future__ import annotations

from pathlib import Path

from vmlab.errors import ProfileError
from vmlab.profile import LoadedProfile, load_profile
from vmlab.profilefiles import lab_profile_source
from vmlab.progress import QUIET, Progress
from vmlab.statemodel import LabState, StageRecord


def load_lab_profile(state: LabState, progress: Progress = QUIET) -> LoadedProfile:
    """The profile a lab was created from, read again to run its stages (the one place that
    does). Names the file and what to do when it is gone or no longer valid, and warns about
    changes that an existing lab does not take on."""
    path = Path(state.profile_path)
    works_without = ("status, snapshots, rollback, ssh and destroy of the lab work without "
                     "it")
    source, by_name = lab_profile_source(state.profile_path, state.profile)
    if not by_name:
        try:
            loaded = load_profile(source)
        except ProfileError as exc:
            raise ProfileError(
                f"lab {state.lab!r} runs its stages from the profile {path}, which is not "
                f"valid now: {exc.message}", problems=exc.problems,
                hint=f"fix the file (see the problems above); {works_without}") from None
    else:
        try:
            loaded = load_profile(source)
        except ProfileError:
            raise ProfileError(
                f"lab {state.lab!r} runs its stages from the profile {path}, which is gone",
                hint=f"put the profile back at {path}; {works_without}") from None
        progress.warn(f"the profile {path} of lab {state.lab} is gone; using the profile "
                      f"{state.profile!r} found at {loaded.path}")
    _warn_unapplied_changes(state, loaded, progress)
    return loaded


def _warn_unapplied_changes(state: LabState, loaded: LoadedProfile,
                            progress: Progress) -> None:
    """Settings fixed when the lab was made: a change in the profile does not reach it."""
    profile = loaded.profile
    fixed = {"hypervisor": (state.hypervisor, profile.hypervisor),
             "ssh": (state.ssh, profile.ssh), "snapshots": (state.snapshots, profile.snapshots),
             "platform": (state.platform, profile.platform)}
    changed = [key for key, (recorded, now_) in fixed.items()
               if recorded is not None and recorded != now_]
    if changed:
        progress.warn(f"{loaded.path}: {', '.join(changed)} changed since lab {state.lab} was "
                      "created; the lab keeps what it was created with (recreate it to apply "
                      "them)")


def follow_stage_list(state: LabState, names: list[str], loaded: LoadedProfile,
                      progress: Progress = QUIET) -> None:
    """Follow the profile's stage list: new stages become pending, removed ones go."""
    by_name = {record.name: record for record in state.stages}
    added = [name for name in names if name not in by_name]
    removed = [name for name in by_name if name not in names]
    if added or removed:
        progress.warn(f"{loaded.path} changed the stages of lab {state.lab}: "
                      + "; ".join(filter(None, [
                          f"added {', '.join(added)} (pending)" if added else "",
                          f"removed {', '.join(removed)}" if removed else ""])))
    state.stages = [by_name.get(name) or StageRecord(name=name) for name in names]

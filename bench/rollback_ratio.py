"""Undoing a failed stage: `vmlab rollback STAGE` against rebuilding the lab to that point.

Each round, on the local libvirt with the demo profile (guest image cached under
.cache/bench), one VM at a time:

1. rebuild (timed): `vmlab destroy` of the previous round's lab, `vmlab create
   --no-provision`, then every stage before STAGE, each after its snapshot as `vmlab
   provision` does, and STAGE's own snapshot: the state `vmlab rollback STAGE` leaves
   (stages before STAGE done, STAGE pending with its snapshot, the VM up, SSH answering).
   The time without STAGE's snapshot is shown too;
2. STAGE runs (untimed), standing in for the failed attempt;
3. rollback (timed): `vmlab rollback STAGE`, the CLI in a new process, until it returns
   (revert, later snapshots deleted, the VM running and answering SSH).

Medians over the rounds; the lab is destroyed at the end. `--mode live` runs the same on
a profile that extends the given one with `snapshots: {mode: live}`.
Usage: python bench/rollback_ratio.py [--runs 3] [--stage STAGE] [--mode offline|live]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import VMLAB, median, run, save, table, target, use_env, vmlab_env, wall  # noqa: E402

LAB = "bench-rollback"


def provision_until(stage: str) -> float:
    """Run the stages before ``stage`` (each after its snapshot), then take ``stage``'s
    snapshot; return when the stages were done (before that last snapshot)."""
    from vmlab.lab import open_lab

    with open_lab(LAB, "provision") as lab:
        ref = lab.ref()
        lab.ensure_running(ref)
        by_name = {s.name: s for s in lab.stages}
        for record in lab.state.stages:
            if record.name == stage:
                break
            if record.status != "done":
                if record.name not in lab.snapshots(ref):
                    lab.take_snapshot(ref, record.name, f"before stage {record.name}")
                lab.run_stage(ref, by_name[record.name], record)
        stages_done = time.perf_counter()
        if stage not in lab.snapshots(ref):
            lab.take_snapshot(ref, stage, f"before stage {stage}")
    return stages_done


def run_stage(stage: str) -> None:
    from vmlab.lab import open_lab

    with open_lab(LAB, "provision") as lab:
        ref = lab.ref()
        lab.run_stage(ref, next(s for s in lab.stages if s.name == stage),
                      lab.state.stage(stage))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--stage", default=None, help="default: the profile's last stage")
    parser.add_argument("--mode", choices=("offline", "live"), default=None,
                        help="snapshot mode (default: the profile's)")
    args = parser.parse_args()
    rebuild: list[float] = []
    rebuild_no_snap: list[float] = []
    rollback: list[float] = []
    with tempfile.TemporaryDirectory() as home:
        env = vmlab_env(Path(home))
        use_env(env)
        from vmlab.profile import load_profile

        profile = args.profile
        if args.mode:
            profile = str(Path(home) / f"bench-{args.mode}.yaml")
            Path(profile).write_text(f"extends: {args.profile}\nname: bench-{args.mode}\n"
                                     f"snapshots:\n  mode: {args.mode}\n")
        loaded = load_profile(profile)
        stage = args.stage or loaded.profile.stage_names[-1]
        mode = loaded.profile.snapshots.mode
        exists = False
        try:
            for _ in range(args.runs):
                started = time.perf_counter()
                if exists:
                    run(VMLAB + ["destroy", "--lab", LAB, "--yes"], env)
                exists = True
                run(VMLAB + ["create", "--profile", profile, "--no-provision",
                             "--lab", LAB], env, timeout=1800)
                stages_done = provision_until(stage)
                finished = time.perf_counter()
                rebuild.append(finished - started)
                rebuild_no_snap.append(stages_done - started)
                run_stage(stage)
                rollback.append(wall(lambda: run(VMLAB + ["rollback", stage, "--lab", LAB],
                                                 env, timeout=1800)))
        finally:
            if exists:
                run(VMLAB + ["destroy", "--lab", LAB, "--yes"], env)
    back = median(rollback)
    full, partial = median(rebuild), median(rebuild_no_snap)
    before = loaded.profile.stage_names[:loaded.profile.stage_names.index(stage)]
    rows = [
        [f"`vmlab rollback {stage}`", f"{back:.1f}", "1.0x"],
        [f"destroy + create + {', '.join(before) or 'no stage'} + snapshot {stage!r}",
         f"{full:.1f}", f"{full / back:.1f}x"],
        [f"the same without the snapshot {stage!r}", f"{partial:.1f}", f"{partial / back:.1f}x"],
    ]
    body = table(["way back to just before the stage", "median s", "of rollback"], rows)
    save("rollback_ratio" + (f"_{args.mode}" if args.mode else ""), f"Rollback of a failed stage against rebuilding to the same point "
         f"({args.profile} profile, {mode} snapshots)",
         f"{args.runs} rounds; in each, the lab is rebuilt to just before `{stage}` (timed), "
         f"`{stage}` runs (untimed), then `vmlab rollback {stage}` (timed, the CLI in a new "
         f"process); medians. Snapshots are `{mode}`: "
         + ("a revert puts the guest back shut off, so rollback boots it and waits for SSH."
            if mode == "offline" else "a revert puts the guest back running; rollback checks "
            "SSH and steps the guest's clock in one session."),
         body, f"rebuild / rollback: {full / back:.1f}x (target at least 20x): "
               f"{target(full / back >= 20)}"
               + (" (an offline rollback boots the guest; live snapshots are the fast way "
                  "back)" if mode == "offline" else ""))


if __name__ == "__main__":
    main()

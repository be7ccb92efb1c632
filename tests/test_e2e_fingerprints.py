"""End to end on a real qemu guest (one boot): a copy of the demo profile with live snapshots
and two stages that write marker files. Editing the last stage shows it changed, `vmlab
diff` shows the edit, provision rolls back to it and runs only it (the earlier stage's
marker is untouched); with nothing changed provision does nothing; editing the early stage
runs it and every later one again.
"""
from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAB = "e2e-fp"
EARLY = "/var/lib/vmlab-early"
LAST = "/var/lib/vmlab-last"


def write_profile(path: Path, *, early: str = "v1", last: str = "v1") -> None:
    """Each stage writes its version and the time: a stage that runs again leaves other
    content behind. (Not a random number: a revert to a live snapshot restores the guest's
    random generator too, so it gives the same numbers again; vmlab sets the guest's clock
    to now after such a revert.)"""
    path.write_text(textwrap.dedent(f"""\
        extends: demo
        name: e2e-fp
        snapshots: {{mode: live}}
        stages:
          - hosts
          - name: early
            run: ["echo {early} $(date +%s.%N) > {EARLY} && sync"]
          - name: last
            run: ["echo {last} $(date +%s.%N) > {LAST} && sync"]
        """))


def test_an_edited_stage_is_found_diffed_and_reapplied_alone(libvirtd, vmlab, tmp_path):
    profile = tmp_path / "e2e-fp.yaml"
    write_profile(profile)
    vmlab("create", "--profile", str(profile), "--lab", LAB)
    try:
        def cat(path: str) -> str:
            return vmlab("ssh", "--lab", LAB, "--", "cat", path).stdout.strip()

        def drift() -> dict:
            status = vmlab.json("status", "--lab", LAB)
            return {row["name"]: row["drift"] for row in status["stages"]}

        early, last = cat(EARLY), cat(LAST)
        assert early.startswith("v1 ") and last.startswith("v1 ")
        assert drift() == {"hosts": "unchanged", "early": "unchanged", "last": "unchanged"}

        # 1. Edit the last stage: status and diff say so.
        write_profile(profile, last="v2")
        assert drift() == {"hosts": "unchanged", "early": "unchanged", "last": "changed"}
        diff = vmlab("diff", "--lab", LAB).stdout
        assert f"-[install] $ echo v1 $(date +%s.%N) > {LAST}" in diff
        assert f"+[install] $ echo v2 $(date +%s.%N) > {LAST}" in diff

        # 2. provision rolls back to it and runs only it.
        applied = vmlab("provision", "--lab", LAB, "--yes")
        assert "stage last changed since it ran; rolling back" in applied.stderr
        assert cat(EARLY) == early  # the earlier stage did not run again
        assert cat(LAST).startswith("v2 ")
        state = json.loads((vmlab.state_dir / "labs" / LAB / "state.json").read_text())
        assert [s["attempts"] for s in state["stages"]] == [1, 1, 2]

        # 3. Nothing changed: nothing done, quickly.
        started = time.monotonic()
        noop = vmlab("provision", "--lab", LAB)
        took = time.monotonic() - started
        assert noop.stdout == "nothing changed; every stage is done\n"
        assert took < 5, took

        # 4. Edit the early stage: it and everything after it run again.
        last = cat(LAST)
        write_profile(profile, early="v2", last="v2")
        assert drift() == {"hosts": "unchanged", "early": "changed", "last": "stale"}
        vmlab("provision", "--lab", LAB, "--yes")
        assert cat(EARLY).startswith("v2 ")
        assert cat(LAST).startswith("v2 ") and cat(LAST) != last
    finally:
        vmlab("destroy", "--lab", LAB, "--yes", expect=None)

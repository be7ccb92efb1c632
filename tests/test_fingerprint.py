"""Stage fingerprints: a hash of each stage's plan chained to the stage before it; equal for
the same profile, different for a stage whose commands, files or inputs changed and for
every stage after it, blind to secret values."""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

from vmlab import fingerprint
from vmlab.fingerprint import first_changed, stage_prints
from vmlab.platforms import Pkg
from vmlab.profile import load_profile
from vmlab.stages import demo
from vmlab.state import StageRecord


def write(path: Path, *, first: str = "echo one > /root/one", last: str = "echo last",
          secrets: str = "[token]", extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""\
        extends: demo
        name: fp
        secrets: {secrets}
        stages:
          - hosts
          - name: first
            run: ["{first}"]
          - memcached-install
          - memcached-config
          - name: last
            run: ["{last}", "printf %s \\"$VMLAB_SECRET_TOKEN\\" > /root/token"]
        """) + extra)
    return path


def prints(path: Path) -> dict[str, fingerprint.StagePrint]:
    return {p.stage: p for p in stage_prints("fp", load_profile(str(path)))}


def changed_from(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name].fingerprint != after[name].fingerprint]


def test_the_same_profile_gives_the_same_fingerprints(tmp_path):
    a = prints(write(tmp_path / "a.yaml"))
    b = prints(write(tmp_path / "b.yaml"))
    assert list(a) == ["hosts", "first", "memcached-install", "memcached-config", "last"]
    assert a == b
    assert len({p.fingerprint for p in a.values()}) == 5


def test_editing_a_script_changes_it_and_every_later_stage_only(tmp_path):
    before = prints(write(tmp_path / "a.yaml"))
    after = prints(write(tmp_path / "b.yaml", first="echo two > /root/one"))
    assert changed_from(before, after) == ["first", "memcached-install", "memcached-config",
                                           "last"]
    # Only the edited stage's own plan differs: the later ones are stale, not changed.
    assert [n for n in before if before[n].plan_hash != after[n].plan_hash] == ["first"]
    assert "-[install] $ echo one > /root/one" not in after["first"].text
    assert "echo two > /root/one" in after["first"].text


def test_editing_the_last_stage_changes_only_it(tmp_path):
    before = prints(write(tmp_path / "a.yaml"))
    after = prints(write(tmp_path / "b.yaml", last="echo edited"))
    assert changed_from(before, after) == ["last"]


def test_a_profile_input_a_template_uses_changes_that_stage(tmp_path):
    """The hosts and memcached templates render the management address."""
    before = prints(write(tmp_path / "a.yaml"))
    after = prints(write(tmp_path / "b.yaml", extra=textwrap.dedent("""\
        vm:
          nics:
            - {role: provider, network: user, subnet: 10.0.2.0/24, address: 10.0.2.15,
               gateway: 10.0.2.2}
            - {role: management, network: user, subnet: 192.168.70.0/24, address: 192.168.70.9}
        """)))
    assert changed_from(before, after) == list(before)  # hosts is first: the chain does the rest
    assert before["hosts"].plan_hash != after["hosts"].plan_hash
    assert before["memcached-config"].plan_hash != after["memcached-config"].plan_hash
    assert before["memcached-install"].plan_hash == after["memcached-install"].plan_hash


def test_a_vmlab_upgrade_that_changes_a_builtin_stage_changes_its_fingerprint(tmp_path,
                                                                             monkeypatch):
    path = write(tmp_path / "a.yaml")
    before = prints(path)

    def newer_install(c, env):  # what a newer vmlab's memcached-install might run
        c.run(env.distro.install(Pkg.MEMCACHED) + " libmemcached-tools")

    upgraded = [dataclasses.replace(s, install=newer_install) if s.name == "memcached-install"
                else s for s in demo.STAGES]
    monkeypatch.setattr(demo, "STAGES", upgraded)
    after = prints(path)
    assert changed_from(before, after) == ["memcached-install", "memcached-config", "last"]
    assert before["memcached-install"].plan_hash != after["memcached-install"].plan_hash


def test_secrets_count_by_name_not_value(tmp_path):
    path = write(tmp_path / "a.yaml")
    one = prints(path)
    # the text names the secret a command gets, never its value
    assert "    env VMLAB_SECRET_TOKEN=<secret:token>" in one["last"].text
    # renaming the secret script stages get changes them
    renamed = prints(write(tmp_path / "b.yaml", secrets="[other]"))
    assert changed_from(one, renamed) == ["first", "memcached-install", "memcached-config",
                                          "last"]
    # the value is never an input: the plan gives stages a placeholder naming the secret
    from vmlab.plan import plan

    steps = plan("fp", load_profile(str(path)))[-1]["install"]
    assert steps[1]["env"] == {"VMLAB_SECRET_TOKEN": "<secret:token>"}


def test_first_changed_names_the_first_stage_that_ran_with_another_plan(tmp_path):
    before = stage_prints("fp", load_profile(str(write(tmp_path / "a.yaml"))))
    after = stage_prints("fp", load_profile(str(write(tmp_path / "b.yaml", first="echo 2"))))
    records = [StageRecord(name=p.stage, status="done", fingerprint=p.fingerprint,
                           plan_hash=p.plan_hash) for p in before]
    assert first_changed(records, before) is None
    assert first_changed(records, after) == "first"
    kinds = fingerprint.drifts(records, after)
    assert kinds == {"hosts": "unchanged", "first": "changed", "memcached-install": "stale",
                     "memcached-config": "stale", "last": "stale"}
    records[4].status = "pending"
    records[0].fingerprint = None  # ran before vmlab recorded fingerprints
    kinds = fingerprint.drifts(records, after)
    assert kinds["hosts"] == "unknown" and kinds["last"] is None

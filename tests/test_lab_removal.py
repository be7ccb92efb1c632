"""`destroy` and `destroy --forget` remove a lab's directory while they hold its lock: a
command that starts meanwhile finds the lab busy (or gone), never a half-removed one, and
nothing else can take the lab between the check and the removal."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.handmade_labs import node_file, state_v3, vm_xml
from vmlab.errors import LabLocked
from vmlab.state import LabFiles


@pytest.mark.parametrize("command", [["destroy"], ["destroy", "--forget"]])
def test_the_lab_directory_goes_while_the_lab_is_locked(home, vmlab_cli, tmp_path, monkeypatch,
                                                       command):
    uri = node_file(tmp_path / "node.xml", vm_xml("t1"))
    root = home.lab("t1", state_v3("t1", uri, {"a": "done"}))
    real_rmtree = shutil.rmtree
    seen: list[tuple[str, str | None]] = []

    def rmtree(path, *args, **kwargs):
        if Path(path) == root:
            files = LabFiles("t1")
            holder = files.busy()
            try:
                with files.lock("a command started meanwhile"):
                    seen.append(("free", None))
            except LabLocked as exc:
                seen.append(("busy", exc.message if holder is None else holder["command"]))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    result = vmlab_cli(*command, "--yes", "--lab", "t1")
    assert result.code == 0, result.err
    assert seen == [("busy", " ".join(command))]
    assert not root.exists()

"""Ctrl-C and SIGTERM in the middle of a command: exit 130 and the next step, whatever
click makes of the interrupt (it wraps KeyboardInterrupt in Abort)."""
from __future__ import annotations

import os
import signal
import time

import pytest

from vmlab.cli import main


@pytest.fixture
def restore_sigterm():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_command_exits_130_and_says_what_to_do(monkeypatch, capsys,
                                                              restore_sigterm, how):
    def interrupted(lab=None, *, progress=None, **options):
        if how == "ctrl-c":
            raise KeyboardInterrupt
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not interrupt the command")

    monkeypatch.setattr("vmlab.reconcile.run_provision", interrupted)
    with pytest.raises(SystemExit) as info:
        main(["provision", "--lab", "demo"])
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert "interrupted; run `vmlab status` to see where the lab is" in err
    assert "aborted" not in err

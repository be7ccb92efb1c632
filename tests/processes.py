"""Stopping what a test fixture started: by its PID only, never by a process name."""
from __future__ import annotations

import os
import signal
import time


def stop_pid(pid: int, grace: float = 15.0) -> None:
    """SIGTERM, wait up to ``grace`` seconds (reaping it when it is our child), then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

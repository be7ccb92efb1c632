"""Stopping what a test fixture started: by its PID only, never by a process name."""
from __future__ import annotations

import os
import signal
import subprocess
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


def namespace_pids(pid: int | str, namespace: str = "mnt") -> list[int]:
    """The processes in the same ``namespace`` (mnt, net, ...) as ``pid``, ``pid`` included:
    ``pgrep --ns PID --nslist NS``. With ``pid`` our own, that is a daemon of this machine
    and not one a test started in a private namespace (``pgrep -x virtlogd`` finds both)."""
    result = subprocess.run(["pgrep", "--ns", str(pid), "--nslist", namespace],
                            capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def running_here(name: str) -> bool:
    """Whether a process named ``name`` runs in this process's mount namespace."""
    result = subprocess.run(["pgrep", "--ns", str(os.getpid()), "--nslist", "mnt", "-x", name],
                            stdout=subprocess.DEVNULL)
    return result.returncode == 0

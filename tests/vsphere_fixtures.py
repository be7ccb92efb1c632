"""A vSphere simulator for the tests (a pytest plugin, registered in tests/conftest.py).

``vcsim``: govmomi's vCenter simulator, built from Debian's govmomi library by
tests/vsphere_sim/build.sh into .cache/vcsim (or the binary named by $VMLAB_VCSIM), started
on 127.0.0.1 on a free port for the whole session, and stopped by its PID at the end.
Without Go or the library the tests that use it are skipped, saying why; `make test` names
the binary it built in $VMLAB_VCSIM, so there a missing simulator fails instead.

``driver``: the vSphere driver connected to it; ``vm``: a test VM made by that driver and
destroyed after the test (pyVmomi is imported only by tests that use them).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, NamedTuple
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "tests" / "vsphere_sim" / "build.sh"
BUILD_DIR = REPO / ".cache" / "vcsim"
MISSING_PREREQUISITE = 3  # build.sh: Go or the govmomi library is not installed
START_TIMEOUT = 30.0


class Vcsim(NamedTuple):
    host: str
    port: int
    user: str
    password: str

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/sdk"


def vcsim_binary() -> Path:
    """The simulator binary: $VMLAB_VCSIM, or built (when out of date) into .cache/vcsim."""
    given = os.environ.get("VMLAB_VCSIM")
    if given:
        if not os.access(given, os.X_OK):
            pytest.fail(f"VMLAB_VCSIM={given} is not an executable file")
        return Path(given)
    result = subprocess.run([str(BUILD), str(BUILD_DIR)], capture_output=True, text=True,
                            check=False)
    if result.returncode == MISSING_PREREQUISITE:
        pytest.skip(f"no vSphere simulator: {result.stderr.strip()}")
    if result.returncode != 0:
        pytest.fail(f"building the vSphere simulator failed (exit {result.returncode}):\n"
                    f"{result.stdout}{result.stderr}")
    return BUILD_DIR / "vcsim-vmlab"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _stop(pid: int, process: subprocess.Popen) -> None:
    """SIGTERM the simulator by its PID (it removes its datastore files), SIGKILL if stuck."""
    if process.poll() is not None:
        return
    os.kill(pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.kill(pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def vcsim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vcsim]:
    """(host, port, user, password) of a running simulator, for the whole session."""
    binary = vcsim_binary()
    workdir = tmp_path_factory.mktemp("vcsim")
    url_file, log_file = workdir / "url", workdir / "vcsim.log"
    with log_file.open("wb") as log:
        process = subprocess.Popen([str(binary), "-l", "127.0.0.1:0", "-url-file",
                                    str(url_file)], stdout=subprocess.DEVNULL, stderr=log,
                                   cwd=workdir)
    pid = process.pid
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if url_file.is_file():
                url = urlparse(url_file.read_text().strip())
                assert url.hostname and url.port and url.username and url.password
                if _answers(url.hostname, url.port):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_file.read_text(errors="replace")[-2000:]
                pytest.fail(f"the vSphere simulator did not start (exit status "
                            f"{process.poll()}):\n{tail}")
            time.sleep(0.05)
        yield Vcsim(url.hostname, url.port, url.username, url.password)
    finally:
        _stop(pid, process)


@pytest.fixture
def driver(vcsim: Vcsim):
    """A vSphere driver connected to the simulator, closed after the test."""
    from tests.vsphere_helpers import open_driver  # here: pyVmomi only where it is used

    with open_driver(vcsim) as connected:
        yield connected


@pytest.fixture
def vm(driver):
    """A test VM (``spec()``: powered off, no snapshots), destroyed after the test unless
    the test destroyed it itself."""
    from tests.vsphere_helpers import spec

    ref = driver.create(spec())
    yield ref
    if driver.find(ref.name) is not None:
        driver.destroy(ref)

"""A vSphere simulator for the tests: built from Debian's govmomi library (tests/vsphere_sim),
started on 127.0.0.1 on a free port, stopped by its PID."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "tests" / "vsphere_sim" / "build.sh"


@pytest.fixture(scope="session")
def vcsim(tmp_path_factory):
    """(host, port, user, password) of a running simulator."""
    if shutil.which("go") is None or not Path("/usr/share/gocode/src/github.com/vmware/"
                                              "govmomi/simulator").is_dir():
        pytest.skip("the vSphere simulator needs golang-go and "
                    "golang-github-vmware-govmomi-dev (make test installs them)")
    dest = REPO / ".cache" / "vcsim"
    subprocess.run([str(BUILD), str(dest)], check=True, capture_output=True)
    url_file = tmp_path_factory.mktemp("vcsim") / "url"
    process = subprocess.Popen([str(dest / "vcsim-vmlab"), "-url-file", str(url_file)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not url_file.is_file():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the vSphere simulator did not start")
            time.sleep(0.1)
        url = urlparse(url_file.read_text().strip())
        yield url.hostname, url.port, url.username, url.password
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()

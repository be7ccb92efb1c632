"""Fixtures for tests that drive real labs: a libvirt daemon, isolated vmlab dirs, the CLI.

Registered from conftest.py. A daemon the harness starts is stopped by its PID at the end;
a daemon that was already running is used and left alone.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Iterator

import pytest

from tests.processes import running_here, stop_pid
from vmlab.errors import NotFound

REPO = Path(__file__).resolve().parent.parent
VMLAB = [sys.executable, "-m", "vmlab"]
# libvirtd in the background under a reaper for its qemu processes (see the script)
START_LIBVIRTD = REPO / "scripts/start-libvirtd"
#: Set by scripts/run-tests: the daemon on qemu:///system serves several pytest runs at once
SHARED_DAEMON = "VMLAB_TEST_SHARED_LIBVIRTD"


def libvirtd_answers(uri: str = "qemu:///system") -> bool:
    return subprocess.run(["virsh", "-c", uri, "version"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def _start_daemon(argv: list[str], pidfile: Path) -> int:
    """Start a daemon that writes ``pidfile`` and return its PID once it has."""
    subprocess.run(argv + ["-p", str(pidfile)], check=True)
    for _ in range(100):
        if pidfile.is_file() and pidfile.read_text().strip():
            return int(pidfile.read_text().strip())
        time.sleep(0.1)
    raise RuntimeError(f"{argv[0]} wrote no pid file")


def remove_images_uploaded_since(started: float, uri: str = "qemu:///system") -> None:
    """Delete the guest images uploaded to vmlab's pool since ``started`` that no disk is
    built on any more: what this session's labs uploaded and left."""
    from vmlab.drivers.libvirt import LibvirtDriver

    with LibvirtDriver(uri) as driver:
        for image in driver.unused_images(timedelta(0)):
            if image.created is not None and image.created.timestamp() >= started:
                try:
                    driver.delete_image(image.name)
                except NotFound:
                    pass  # a lab of another session was just built on it


@pytest.fixture(scope="session")
def libvirtd() -> Iterator[str]:
    """qemu:///system answering: the running daemon, or one this fixture starts and stops.
    Guest images the session's labs uploaded are deleted at the end either way."""
    session_started = time.time()
    if libvirtd_answers():
        try:
            yield "qemu:///system"
        finally:
            # a daemon shared by pytest runs side by side (scripts/run-tests): the runner
            # removes the images once both are done, never one run under the other
            if not os.environ.get(SHARED_DAEMON):
                remove_images_uploaded_since(session_started)
        return
    if shutil.which("libvirtd") is None or os.geteuid() != 0:
        pytest.fail("libvirtd is not installed or not root: run `make test`, which installs it")
    rundir = Path(tempfile.mkdtemp(prefix="vmlab-daemons-"))
    started: list[int] = []
    if not running_here("virtlogd"):  # not one in a private namespace of another test
        started.append(_start_daemon(["virtlogd", "-d"], rundir / "virtlogd.pid"))
    started.append(_start_daemon([str(START_LIBVIRTD)], rundir / "libvirtd.pid"))
    deadline = time.monotonic() + 60
    while not libvirtd_answers():
        if time.monotonic() > deadline:
            pytest.fail("libvirtd did not answer on qemu:///system within 60s")
        time.sleep(0.5)
    try:
        yield "qemu:///system"
    finally:
        remove_images_uploaded_since(session_started)
        for pid in reversed(started):
            stop_pid(pid)
        shutil.rmtree(rundir, ignore_errors=True)


def test_cache_dir(tmp_path_factory) -> Path:
    """Where guest images are cached: kept between runs when VMLAB_TEST_CACHE is set."""
    given = os.environ.get("VMLAB_TEST_CACHE")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.getbasetemp() / "cache"


test_cache_dir.__test__ = False  # a helper, not a test


@pytest.fixture(scope="module")
def vmlab_home(tmp_path_factory) -> dict[str, str]:
    """Environment for vmlab subprocesses: private state and config, the shared image cache."""
    home = tmp_path_factory.mktemp("vmlab-home")
    return {**os.environ,
            "XDG_STATE_HOME": str(home / "state"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(test_cache_dir(tmp_path_factory) / "xdg"),
            "PYTHONPATH": str(REPO)}


class Vmlab:
    """Runs the real CLI in a subprocess, as an operator (or a cron job) would; ``prefix``
    runs it through another command (e.g. nsenter into a test's network namespace)."""

    def __init__(self, env: dict[str, str], prefix: tuple[str, ...] = ()) -> None:
        self.env = env
        self.prefix = prefix

    def __call__(self, *args: str, expect: int | None = 0, timeout: float = 1800,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """``env``: variables added for this one command (e.g. VMLAB_SEED_PASSWORDS)."""
        result = subprocess.run([*self.prefix, *VMLAB, *args], env={**self.env, **(env or {})},
                                capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if expect is not None and result.returncode != expect:
            raise AssertionError(
                f"vmlab {' '.join(args)} exited {result.returncode}, expected {expect}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
        return result

    def json(self, *args: str) -> object:
        return json.loads(self(*args, "--json").stdout)

    @property
    def state_dir(self) -> Path:
        return Path(self.env["XDG_STATE_HOME"]) / "vmlab"


@pytest.fixture(scope="module")
def vmlab(vmlab_home) -> Vmlab:
    return Vmlab(vmlab_home)


def virsh(*args: str, uri: str = "qemu:///system") -> str:
    return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True,
                          check=True).stdout

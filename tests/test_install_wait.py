"""The wait for an installer (kickstart or preseed): success switches the VM to its disk;
an installer that powers off without calling back, or one that runs past its time, is an
error that shows the serial console's last lines, terminal control sequences removed."""
from __future__ import annotations

import itertools

import pytest

from vmlab import install
from vmlab.drivers.base import DiskSpec, PowerState, VMRef
from vmlab.errors import InfrastructureError, WaitTimeout
from vmlab.install import Prepared, console_tail, run_install
from vmlab.profile import PreseedInstall
from vmlab.progress import QUIET

REF = VMRef(driver="libvirt", name="vmlab-t", uuid="00000000-0000-0000-0000-000000000001",
            lab="t")
# what debian-installer's newt screens leave in a serial log
NEWT = ("\x1b[1;24r\x1b[4l\x1b)0\x1b[?25l\x1b[1;1H\x1b[0;37;44m\x1b[H\x1b[J"
        "\x1b[3;2H\x1b(0lqqqqu\x1b(B Installing the base system \x1b(0tqqqqk\x1b(B\r\n"
        "\x1b[4;2H\x1b(0x\x1b(B   \x1b(0x\x1b(B"
        "\x1b[10;5H\x1b(0x\x1b(B Retrieving libc6 \x1b(0x\x1b(B\x1b[11;5H 22%\r"
        "\x1b[12;5H\x0e mqqqqqqj \x0f\r\n"
        "\x1b[H\x1b[7m[ ( 1*installer ) 2 shell 3 shell 4- log ][ Dec 03 6:53 ]\x1b[m")


class Hypervisor:
    """The few driver calls the wait makes, recorded; the VM runs until ``off_after`` state
    reads."""

    def __init__(self, log, off_after: int | None = None) -> None:
        self.log = log
        self.calls: list[str] = []
        self.reads = 0
        self.off_after = off_after

    def start(self, ref): self.calls.append("start")

    def state(self, ref):
        self.reads += 1
        off = self.off_after is not None and self.reads > self.off_after
        return PowerState.SHUTOFF if off else PowerState.RUNNING

    def wait_for_state(self, ref, wanted, timeout): self.calls.append(f"wait {wanted.value}")

    def start_install(self, ref): self.calls.append("start install")

    def finish_install(self, ref): self.calls.append("finish install")

    def console_log_path(self, ref): return str(self.log)


class Server:
    def __init__(self, done_after: int | None) -> None:
        self.waits = 0
        self.done_after = done_after

    def wait_done(self, timeout: float) -> bool:
        self.waits += 1
        return self.done_after is not None and self.waits > self.done_after


def prepared(server: Server) -> Prepared:
    return Prepared(disk=DiskSpec(size_gib=10),
                    installer=PreseedInstall(method="preseed", install_timeout_minutes=5),
                    server=server)


@pytest.fixture
def console(tmp_path):
    log = tmp_path / "serial.log"
    log.write_text("early boot line\n" * 30 + NEWT)
    return log


def test_after_the_callback_the_vm_is_switched_to_its_disk_and_started(console):
    hypervisor = Hypervisor(console)
    run_install(hypervisor, REF, prepared(Server(done_after=2)), QUIET)
    assert hypervisor.calls == ["start install", "wait shutoff", "finish install", "start"]


def test_an_installer_that_stops_without_calling_back_shows_the_console(console):
    with pytest.raises(InfrastructureError) as info:
        run_install(Hypervisor(console, off_after=1), REF, prepared(Server(None)), QUIET)
    message = info.value.message
    assert message.startswith("the installer stopped before it reported success")
    assert f"the console's last lines ({console})" in message
    assert "\x1b" not in message and "\x0e" not in message
    # the dialog's title and text, without its frame or screen's status bar
    assert message.splitlines()[-4:] == ["  early boot line", "  Installing the base system",
                                         "  Retrieving libc6", "  22%"]


def test_an_install_past_its_time_is_a_timeout_showing_the_console(console, monkeypatch):
    clock = itertools.count(0, 100)  # each look at the clock: 100 s later
    monkeypatch.setattr(install.time, "monotonic", lambda: next(clock))
    with pytest.raises(WaitTimeout) as info:
        run_install(Hypervisor(console), REF, prepared(Server(None)), QUIET)
    assert "the preseed install did not finish in 5 min" in info.value.message
    assert "Retrieving libc6" in info.value.message
    assert "install source reachable" in info.value.hint


def test_console_tail_is_empty_where_the_log_cannot_be_read(tmp_path):
    assert console_tail(Hypervisor(tmp_path / "absent.log"), REF) == []
    assert console_tail(Hypervisor(""), REF) == []

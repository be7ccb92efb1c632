"""Proof under pressure: real faults injected into a real lab (qemu guest, libvirtd, SSH).

Each fault must end in a clear error (exit 1, a hint naming the way back) or, for a signal,
exit 130 with the next step; the state file must stay whole and say what happened; the lab's
lock must be free; and `vmlab rollback` and `vmlab resume` must then bring the lab back.

The lab runs on a libvirtd of this module's own (tests/private_libvirtd.py): the test
restarts that daemon and fills its storage pool, which must never happen to the machine's
daemon. One lab serves every fault after the interrupted creates; its snapshots are live
(a revert takes seconds, no reboot), and its `work` stage is rewritten for each fault.
The same guest also fetches from the install server while host clients abuse it.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.http_helpers import http_request
from tests.lab_harness import VMLAB
from tests.private_libvirtd import PrivateLibvirtd
from vmlab.install import _install_server_address
from vmlab.installserver import InstallServer
from vmlab.profile import load_profile

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAB = "e2e-faults"
VM = f"vmlab-{LAB}"
BENIGN = ["echo done-by-work > /root/work && sync"]
STARTED = "/run/vmlab-work-started"  # on the guest's tmpfs: a revert or reboot drops it


@pytest.fixture(scope="module")
def hypervisor():
    daemon = PrivateLibvirtd(images_size="3G").start()
    yield daemon
    daemon.stop()


class FaultLab:
    """The module's lab: its profile (the `work` stage is rewritten per fault) and helpers."""

    def __init__(self, vmlab, hypervisor: PrivateLibvirtd, profile: Path) -> None:
        self.vmlab = vmlab
        self.hypervisor = hypervisor
        self.profile = profile

    def write_profile(self, work: list[str]) -> None:
        """The demo VM with two script stages; `work` runs ``work`` (JSON strings are YAML)."""
        self.profile.write_text("\n".join([
            "extends: demo",
            f"name: {LAB}",
            f"hypervisor: {{kind: libvirt, uri: {json.dumps(self.hypervisor.uri)}}}",
            "vm: {memory_mib: 512}",
            "snapshots: {mode: live}",
            "stages:",
            "  - name: prepare",
            "    run: [\"echo prepared > /root/prepared && sync\"]",
            "  - name: work",
            f"    run: {json.dumps(work)}",
            "    verify: [\"test -s /root/work\"]",
            ""]))

    # -- the CLI ---------------------------------------------------------------------------
    def status(self) -> dict:
        return self.vmlab.json("status", "--lab", LAB)

    def stages(self) -> dict[str, str]:
        return {row["name"]: row["status"] for row in self.status()["stages"]}

    def snapshots(self) -> list[str]:
        return [s["name"] for s in self.vmlab.json("snapshots", "--lab", LAB)]

    def start(self, *args: str) -> "Running":
        return Running(self.vmlab.env, args)

    def guest(self, command: str, expect: int | None = 0) -> subprocess.CompletedProcess:
        return self.vmlab("ssh", "--lab", LAB, "--", command, expect=expect)

    # -- states the faults start from and end in ---------------------------------------------
    def work_pending(self, work: list[str]) -> None:
        """`work` pending, its snapshot there, and ``work`` as its commands."""
        if self.stages()["work"] != "pending":
            self.vmlab("rollback", "work", "--lab", LAB)
        self.write_profile(work)

    def recover_with_rollback_and_resume(self, stage: str = "work") -> None:
        """The way back every hint names: rollback, fix the stage, resume; then all is done."""
        self.wait_until_snapshot_is_older_than(stage, 6)  # so the clock check means something
        self.vmlab("rollback", stage, "--lab", LAB)
        assert self.stages()[stage] == "pending"
        self.assert_guest_clock_is_now(stage)
        self.write_profile(BENIGN)
        self.vmlab("resume", "--lab", LAB)
        status = self.status()
        assert [r["status"] for r in status["stages"]] == ["done", "done"], status["stages"]
        assert status["complete"] is True and status["power"] == "running"
        assert self.snapshots() == ["prepare", "work", "complete"]
        assert self.guest("cat /root/work").stdout == "done-by-work\n"

    def snapshot_age(self, snapshot: str) -> float:
        taken = next(s for s in self.vmlab.json("snapshots", "--lab", LAB)
                     if s["name"] == snapshot)["created"]
        return time.time() - datetime.fromisoformat(taken).timestamp()

    def wait_until_snapshot_is_older_than(self, snapshot: str, seconds: float) -> None:
        time.sleep(max(0.0, seconds - self.snapshot_age(snapshot)))

    def assert_guest_clock_is_now(self, snapshot: str) -> None:
        """A live revert resumes the guest at the snapshot's time; rollback steps its clock."""
        taken = next(s for s in self.vmlab.json("snapshots", "--lab", LAB)
                     if s["name"] == snapshot)["created"]
        age = time.time() - datetime.fromisoformat(taken).timestamp()
        before = time.time()
        guest_now = float(self.guest("date +%s.%N").stdout)
        after = time.time()
        assert age > 5, "the snapshot is too young for this check to mean anything"
        assert before - 2 <= guest_now <= after + 2, (guest_now, before, after, age)

    def assert_consistent(self, expected: dict[str, str]) -> dict:
        """The state file parses, says what happened, and the lab's lock is free."""
        lab_dir = self.vmlab.state_dir / "labs" / LAB
        json.loads((lab_dir / "state.json").read_text())  # whole, never torn
        assert not list(lab_dir.glob(".state.json.*")), "a temporary state file was left"
        assert not (lab_dir / "lock.info").exists(), "the lock was not released"
        status = self.status()
        assert {r["name"]: r["status"] for r in status["stages"]} == expected
        return status

    def wait_for_work_running(self, run: "Running", timeout: float = 240) -> None:
        """Until the `work` stage's command really runs in the guest."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert run.proc.poll() is None, run.output()
            if "stage work: install" in run.stderr() and \
                    self.guest(f"test -e {STARTED}", expect=None).returncode == 0:
                return
            time.sleep(1)
        raise AssertionError(f"the work stage did not start:\n{run.output()}")


class Running:
    """A vmlab command in the background, its stderr collected line by line."""

    def __init__(self, env: dict[str, str], args: tuple[str, ...]) -> None:
        self.proc = subprocess.Popen(VMLAB + list(args), env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, preexec_fn=_default_sigint)
        self.lines: list[str] = []
        self.out = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def stderr(self) -> str:
        return "".join(self.lines)

    def output(self) -> str:
        return f"--- exit {self.proc.returncode}\n--- stderr\n{self.stderr()}"

    def wait_for_line(self, text: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        """SIGINT to the process group (Ctrl-C on a terminal); SIGTERM to vmlab alone (a
        scheduler stopping a job)."""
        if signum == signal.SIGINT:
            os.killpg(self.proc.pid, signum)
        else:
            self.proc.send_signal(signum)

    def wait(self, timeout: float = 300) -> int:
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code


def _default_sigint() -> None:
    """A run started in the background by a non-interactive shell inherits SIGINT ignored
    (and Python then keeps ignoring it); vmlab under test must get Ctrl-C as a terminal
    gives it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def assert_stage_failure(result, stage: str, *words: str) -> None:
    """Exit 1, what went wrong, and the way back, without a traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: stage {stage!r} failed" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert f"vmlab rollback {stage} --lab {LAB}" in result.stderr
    assert f"vmlab resume --lab {LAB}" in result.stderr


def lab_leftovers(hypervisor: PrivateLibvirtd) -> list[str]:
    domains = hypervisor.virsh("list", "--all", "--name").split()
    volumes = hypervisor.virsh("vol-list", "vmlab", check=False).split()
    return [name for name in domains + volumes if name.startswith(VM)]


def half_uploaded_base_volumes(hypervisor: PrivateLibvirtd, vmlab) -> list[str]:
    """Shared base volumes (they outlive labs) whose size is not their image's."""
    images = Path(vmlab.env["XDG_CACHE_HOME"]) / "vmlab" / "images"
    sizes = {(d / "disk.sha256").read_text().split()[0][:16]: (d / "disk.qcow2").stat().st_size
             for d in images.iterdir() if (d / "disk.sha256").is_file()}
    pool = hypervisor.images / "vmlab"
    bases = [p for p in pool.glob("vmlab-base-*.qcow2")] if pool.is_dir() else []
    return [p.name for p in bases
            if p.stat().st_size != sizes.get(p.name[len("vmlab-base-"):-len(".qcow2")])]


# -- interrupted creates (before the module's lab exists: one VM at a time) -------------------

def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_for_base_upload(hypervisor: PrivateLibvirtd, run: "Running") -> None:
    """Until the (first) upload of the guest image into the fresh pool is under way: more
    than the new volume's empty qcow2 header has arrived."""
    pool = hypervisor.images / "vmlab"
    while not any(size(p) > (1 << 20) for p in pool.glob("vmlab-base-*.qcow2")):
        assert run.proc.poll() is None, run.output()
        time.sleep(0.005)


@pytest.mark.parametrize("signum, phase", [
    (signal.SIGINT, "creating VM"),         # the guest image being uploaded to the pool
    (signal.SIGTERM, "waiting for SSH"),    # the VM booting
], ids=["sigint-while-uploading-the-image", "sigterm-while-booting"])
def test_interrupted_create_removes_everything_it_made(hypervisor, vmlab, tmp_path, signum,
                                                       phase):
    lab = FaultLab(vmlab, hypervisor, tmp_path / "faults.yaml")
    lab.write_profile(BENIGN)
    run = lab.start("create", "--profile", str(lab.profile), "--lab", LAB)
    run.wait_for_line(f"{phase} ")
    if phase == "creating VM":
        wait_for_base_upload(hypervisor, run)
    else:
        assert VM in hypervisor.virsh("list", "--name").split()  # really running
    run.signal(signum)
    assert run.wait() == 130, run.output()
    assert "interrupted" in run.stderr() and "Traceback" not in run.stderr()
    if phase == "waiting for SSH":
        assert f"create failed; removing {VM}" in run.stderr()

    assert lab_leftovers(hypervisor) == []
    assert half_uploaded_base_volumes(hypervisor, vmlab) == []
    assert not (vmlab.state_dir / "labs" / LAB).exists()
    kept = list((vmlab.state_dir / "failed").glob(f"{LAB}-*.log"))
    assert kept, "the log of the failed create is kept for the operator"
    # The next command says what to do: there is no such lab; create it.
    nxt = vmlab("status", "--lab", LAB, expect=2)
    assert f"lab {LAB!r} does not exist" in nxt.stderr and "vmlab create" in nxt.stderr


# -- the module's lab ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab(hypervisor, vmlab, tmp_path_factory):
    profile = tmp_path_factory.mktemp("faults") / "faults.yaml"
    fault_lab = FaultLab(vmlab, hypervisor, profile)
    fault_lab.write_profile(BENIGN)
    vmlab("create", "--profile", str(profile), "--lab", LAB)
    assert fault_lab.stages() == {"prepare": "done", "work": "done"}
    yield fault_lab
    vmlab("destroy", "--lab", LAB, "--yes")
    assert lab_leftovers(hypervisor) == []


def test_ssh_connection_dropped_mid_command_fails_the_stage(lab):
    # The command kills the guest's sshd process serving vmlab's connection, mid-command.
    kill_own_sshd = (f"touch {STARTED}; p=$$; "
                     "while c=$(ps -o comm= -p $p) && [ \"$c\" != sshd ]; do "
                     "p=$(ps -o ppid= -p $p | tr -d ' '); done; "
                     "(sleep 2; kill -9 $p) & sleep 60")
    lab.work_pending([kill_own_sshd])
    failed = lab.vmlab("resume", "--lab", LAB, expect=1)
    assert_stage_failure(failed, "work", "SSH connection", "was lost",
                         "the guest may have rebooted or stopped")
    status = lab.assert_consistent({"prepare": "done", "work": "failed"})
    assert "was lost" in status["stages"][1]["error"]
    assert status["next"] == f"vmlab rollback work --lab {LAB} && vmlab resume --lab {LAB}"
    lab.recover_with_rollback_and_resume()


def test_guest_reset_mid_stage_fails_the_stage(lab):
    lab.work_pending([f"touch {STARTED}; sleep 600"])
    run = lab.start("resume", "--lab", LAB)
    lab.wait_for_work_running(run)
    lab.hypervisor.virsh("reset", VM)  # a hard reset, as a crash or a watchdog does
    assert run.wait(timeout=300) == 1, run.output()
    failed = subprocess.CompletedProcess(run.proc.args, 1, run.out, run.stderr())
    assert_stage_failure(failed, "work", "was lost")
    lab.assert_consistent({"prepare": "done", "work": "failed"})
    lab.recover_with_rollback_and_resume()


def test_libvirtd_restart_mid_stage_fails_the_stage_clearly(lab):
    lab.work_pending([f"touch {STARTED}; sleep 20; echo done-by-work > /root/work"])
    run = lab.start("resume", "--lab", LAB)
    lab.wait_for_work_running(run)
    old = lab.hypervisor.pid
    lab.hypervisor.restart_daemon()
    assert lab.hypervisor.pid != old
    assert run.wait(timeout=300) == 1, run.output()
    failed = subprocess.CompletedProcess(run.proc.args, 1, run.out, run.stderr())
    # Not "the VM does not exist": the connection to libvirtd went away.
    assert_stage_failure(failed, "work", "connection to libvirt", "was lost",
                         "libvirtd stopped or restarted")
    assert "does not exist" not in failed.stderr
    lab.assert_consistent({"prepare": "done", "work": "failed"})
    lab.recover_with_rollback_and_resume()


def test_snapshot_failing_on_a_full_pool_stops_before_the_stage(lab):
    # `prepare` pending: resume runs it, then snapshots `work` on a pool with no room left.
    lab.vmlab("rollback", "prepare", "--lab", LAB)
    lab.write_profile(BENIGN)
    filler = lab.hypervisor.images / "filler"
    free = os.statvfs(lab.hypervisor.images).f_bavail * os.statvfs(lab.hypervisor.images).f_frsize
    subprocess.run(["fallocate", "-l", str(free - (48 << 20)), str(filler)], check=True)
    try:
        failed = lab.vmlab("resume", "--lab", LAB, expect=1, timeout=300)
    finally:
        filler.unlink()
    assert "Traceback" not in failed.stderr
    assert "error: the snapshot 'work' (before stage work) could not be taken" in failed.stderr
    # qemu's own words for the write that found no room (it reports ENOSPC as EIO here)
    assert "Error while writing VM state" in failed.stderr, failed.stderr
    assert "is its storage pool full?" in failed.stderr
    assert f"vmlab resume --lab {LAB}" in failed.stderr
    status = lab.assert_consistent({"prepare": "done", "work": "pending"})
    assert status["power"] == "running"
    assert "work" not in lab.snapshots()
    lab.vmlab("resume", "--lab", LAB)  # room again: the snapshot, then the stage
    assert lab.snapshots() == ["prepare", "work", "complete"]
    lab.recover_with_rollback_and_resume()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_during_a_stage_leaves_a_consistent_lab(lab, signum):
    lab.work_pending([f"touch {STARTED}; sleep 600"])
    run = lab.start("resume", "--lab", LAB)
    lab.wait_for_work_running(run)
    run.signal(signum)
    assert run.wait(timeout=120) == 130, run.output()
    assert "interrupted; run `vmlab status`" in run.stderr()
    assert "Traceback" not in run.stderr()
    status = lab.assert_consistent({"prepare": "done", "work": "failed"})
    assert status["stages"][1]["error"] == "interrupted"
    assert status["next"] == f"vmlab rollback work --lab {LAB} && vmlab resume --lab {LAB}"
    lab.recover_with_rollback_and_resume()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_signal_during_a_snapshot_leaves_a_consistent_lab(lab, signum):
    lab.vmlab("rollback", "prepare", "--lab", LAB)
    lab.write_profile(BENIGN)
    run = lab.start("resume", "--lab", LAB)
    run.wait_for_line("taking live snapshot 'work' ...")
    run.signal(signum)
    assert run.wait(timeout=120) == 130, run.output()
    assert "interrupted; run `vmlab status`" in run.stderr()
    assert "Traceback" not in run.stderr()
    # The snapshot was either taken whole or not at all; `work` has not run either way.
    status = lab.assert_consistent({"prepare": "done", "work": "pending"})
    assert status["next"] == f"vmlab provision --lab {LAB}"
    assert lab.snapshots() in (["prepare"], ["prepare", "work"])
    lab.vmlab("resume", "--lab", LAB)
    assert lab.snapshots() == ["prepare", "work", "complete"]
    lab.recover_with_rollback_and_resume()


# -- the install server under abuse, fetched from by the real guest -------------------------------

def guest_http(lab: FaultLab, host: str, port: int, method: str, path: str) -> str:
    """One HTTP/1.0 request from inside the guest with bash's /dev/tcp (no client needed),
    the raw response back. printf turns the request's \\r\\n into CR LF."""
    request = f"{method} {path} HTTP/1.0\\r\\nHost: {host}\\r\\nContent-Length: 0\\r\\n\\r\\n"
    script = (f"exec 3<>/dev/tcp/{host}/{port} && printf {shlex.quote(request)} >&3 && "
              "timeout 20 cat <&3")
    return lab.guest(script).stdout


def test_install_server_under_abuse_keeps_serving_the_real_guest(lab, tmp_path):
    # The address vmlab serves a kickstart on when the provider NIC is user-mode.
    profile = tmp_path / "ks.yaml"
    profile.write_text("extends: newton-aio\nname: ks-user\nvm:\n  nics:\n"
                       "    - {role: provider, network: user, subnet: 10.0.2.0/24}\n"
                       "    - {role: management, network: user, subnet: 192.168.70.0/24, "
                       "address: 192.168.70.2}\n")
    loaded = load_profile(str(profile))
    bind, guest_host = _install_server_address(loaded, loaded.profile.install)
    assert (bind, guest_host) == ("127.0.0.1", "10.0.2.2")

    kickstart = b"# the lab's kickstart\ntext\nreboot\n"
    fetches: list[str] = []
    with InstallServer(bind, {"ks.cfg": kickstart}, url_host=guest_host,
                       log=fetches.append) as server:
        token, port = server.token, server.port
        idle = []  # slow clients: connected, a request begun and never finished
        for _ in range(20):
            sock = socket.create_connection((bind, port))
            sock.sendall(b"GET /")
            idle.append(sock)
        try:
            for path in ("/ks.cfg", f"/{token}/../{token}/ks.cfg/..",
                         f"/{token}/%2e%2e/etc/passwd", f"/{token}//etc/passwd", "/guess/ks.cfg"):
                assert http_request(bind, port, "GET", path)[0] == 404, path
            assert http_request(bind, port, "PUT", f"/{token}/ks.cfg", b"x")[0] == 405
            assert http_request(bind, port, "POST", f"/{token}/done", b"x" * 100_000)[0] == 413
            assert http_request(bind, port, "POST", "/guess/done")[0] == 404
            assert not server.done.is_set()

            started = time.monotonic()
            fetched = guest_http(lab, guest_host, port, "GET", f"/{token}/ks.cfg")
            assert time.monotonic() - started < 30
            assert fetched.startswith("HTTP/1.0 200") and fetched.endswith(kickstart.decode())
            outside = guest_http(lab, guest_host, port, "GET", f"/{token}/../../etc/passwd")
            assert outside.startswith("HTTP/1.0 404") and "root:" not in outside
            done = guest_http(lab, guest_host, port, "POST", f"/{token}/done")
            assert done.startswith("HTTP/1.0 200")
            assert server.wait_done(5)
        finally:
            for sock in idle:
                sock.close()
    served = [line for line in fetches if line.endswith(" 200")]
    assert served == [f"127.0.0.1 GET /{token}/ks.cfg 200", f"127.0.0.1 POST /{token}/done 200"]


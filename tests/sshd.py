"""A real sshd on 127.0.0.1 for tests: its own host key, a generated client key, stopped by PID."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keygen(path: Path) -> Path:
    if not path.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                       check=True)
    return path


class Sshd:
    """sshd -D on 127.0.0.1:port, root login with ``client_key`` only."""

    def __init__(self, workdir: Path, port: int | None = None,
                 client_key: Path | None = None, extra_config: tuple[str, ...] = ()) -> None:
        self.dir = workdir
        self.extra_config = extra_config
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.client_key = client_key or keygen(self.dir / "client_key")
        self.host_key = self.dir / "host_key"
        self.process: subprocess.Popen | None = None

    def new_host_key(self) -> None:
        for path in (self.host_key, self.host_key.with_suffix(".pub")):
            path.unlink(missing_ok=True)
        keygen(self.host_key)

    def start(self) -> "Sshd":
        keygen(self.host_key)
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        authorized = self.dir / "authorized_keys"
        authorized.write_text(Path(f"{self.client_key}.pub").read_text())
        config = self.dir / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{self.port}",
            f"HostKey {self.host_key}",
            f"AuthorizedKeysFile {authorized}",
            f"PidFile {self.dir / 'sshd.pid'}",
            "PermitRootLogin prohibit-password", "PasswordAuthentication no",
            "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "AllowTcpForwarding yes", "Subsystem sftp internal-sftp", "LogLevel ERROR",
            *self.extra_config, ""]))
        self.process = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)],
                                        stdout=subprocess.DEVNULL,
                                        stderr=open(self.dir / "sshd.log", "ab"))
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(self.dir / 'sshd.log').read_text()}")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill_connections(self) -> None:
        """Kill this sshd's per-connection children (a dropped connection), by parent PID."""
        assert self.process is not None
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                                  text=True).stdout.split()
        for pid in children:
            os.kill(int(pid), signal.SIGKILL)


FAKE_SYSTEMCTL = """#!/bin/sh
# stands in for systemd: is-system-running answers what the test wrote to ./state (and logs
# the answer to ./answers); reboot runs ./on-reboot in the background, if there is one
here="$(dirname "$0")"
case "$1" in
  is-system-running) tee -a "$here/answers" < "$here/state" ;;
  reboot) echo reboot >> "$here/calls"
          [ -f "$here/on-reboot" ] && (cd "$here" && sh ./on-reboot) >/dev/null 2>&1 & ;;
esac
"""


class FakeGuest(Sshd):
    """An sshd whose sessions find a fake ``systemctl`` first on PATH, and a boot id file
    (point vmlab.remote.BOOT_ID_FILE at ``boot_id``): a guest that boots, settles and
    reboots as the test writes it, without a VM."""

    def __init__(self, workdir: Path, state: str = "running", boot_id: str = "boot-1") -> None:
        self.bin = workdir / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        (self.bin / "systemctl").write_text(FAKE_SYSTEMCTL)
        (self.bin / "systemctl").chmod(0o755)
        self.set_state(state)
        self.boot_id.write_text(f"{boot_id}\n")
        super().__init__(workdir, extra_config=(
            f"SetEnv PATH={self.bin}:/usr/sbin:/usr/bin:/sbin:/bin",))

    @property
    def boot_id(self) -> Path:
        return self.bin / "boot_id"

    def set_state(self, state: str) -> None:
        """What ``systemctl is-system-running`` answers from now on."""
        (self.bin / "state").write_text(f"{state}\n")

    def answers(self) -> list[str]:
        """What ``systemctl is-system-running`` has answered, in order."""
        path = self.bin / "answers"
        return path.read_text().split() if path.exists() else []

    def reboot_calls(self) -> int:
        path = self.bin / "calls"
        return path.read_text().split().count("reboot") if path.exists() else 0

    def on_reboot(self, script: str) -> None:
        """Shell run (in the bin directory) when ``systemctl reboot`` is called: write
        ``state`` and ``boot_id`` there as a real reboot would change them."""
        (self.bin / "on-reboot").write_text(script)

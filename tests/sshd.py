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

"""A libvirtd of the test's own, which the test may stop and restart at will.

The machine's libvirtd manages other people's guests, so it is never restarted by a test.
This daemon runs in a private mount namespace: /etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/cache/libvirt and /var/log/libvirt are private directories there (so it sees none of
the system daemon's domains, pools or state), and its storage pools live on a tmpfs of a
chosen size (so a test can fill it). Its socket is outside the namespace, and the URI
``qemu:///system?socket=...`` reaches it.

A holder process keeps the namespace alive while the daemon is stopped; everything is
stopped by PID: the daemon, any qemu left in the namespace, then the holder.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.lab_harness import START_LIBVIRTD
from tests.processes import stop_pid

PRIVATE_DIRS = ("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt",
                "/var/log/libvirt")


class PrivateLibvirtd:
    def __init__(self, images_size: str = "3G") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vmlab-private-libvirtd-"))
        self.images_size = images_size
        self.socket_dir = self.root / "sock"
        self.pidfile = self.root / "libvirtd.pid"
        self.conf = self.root / "libvirtd.conf"
        self.holder: subprocess.Popen | None = None
        self.pid: int | None = None

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.socket_dir}/libvirt-sock"

    @property
    def images(self) -> Path:
        """The tmpfs under the pools, as seen from outside the namespace."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root/var/lib/libvirt/images")

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> "PrivateLibvirtd":
        self.socket_dir.mkdir()
        for path in PRIVATE_DIRS:
            (self.root / "ns" / path.lstrip("/")).mkdir(parents=True)
        etc = self.root / "ns/etc/libvirt"
        (etc / "qemu.conf").write_text('stdio_handler = "file"\n')
        self.conf.write_text(f'unix_sock_dir = "{self.socket_dir}"\n'
                             'unix_sock_rw_perms = "0700"\n')
        mounts = "; ".join(f"mount --bind {self.root / 'ns' / p.lstrip('/')} {p}"
                           for p in PRIVATE_DIRS)
        script = (f"set -e; {mounts}; "
                  "mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu "
                  "/var/cache/libvirt/qemu /var/log/libvirt/qemu /run/libvirt/qemu; "
                  f"mount -t tmpfs -o size={self.images_size},mode=0755 vmlab-test-pools "
                  "/var/lib/libvirt/images; echo ready; exec sleep infinity")
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--",
                                        "sh", "-c", script], stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the private mount namespace could not be set up")
        self.start_daemon()
        return self

    def start_daemon(self) -> None:
        assert self.holder is not None
        self.pidfile.unlink(missing_ok=True)
        subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "--",
                        str(START_LIBVIRTD), "-f", str(self.conf), "-p", str(self.pidfile)],
                       check=True)
        deadline = time.monotonic() + 60
        while not self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError("the private libvirtd did not answer within 60s")
            time.sleep(0.3)
        self.pid = int(self.pidfile.read_text().strip())

    def stop_daemon(self) -> None:
        """SIGTERM to the daemon (by its PID), as a service manager's restart does."""
        if self.pid is not None:
            stop_pid(self.pid)
            self.pid = None

    def restart_daemon(self) -> None:
        self.stop_daemon()
        self.start_daemon()

    def answers(self) -> bool:
        return subprocess.run(["virsh", "-c", self.uri, "version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def virsh(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True, text=True,
                              check=check).stdout

    def namespace_pids(self) -> list[int]:
        """Processes in the private namespace other than the holder (the daemon, qemu)."""
        if self.holder is None:
            return []
        try:
            ns = os.readlink(f"/proc/{self.holder.pid}/ns/mnt")
        except OSError:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == self.holder.pid:
                continue
            try:
                if os.readlink(entry / "ns/mnt") == ns:
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        self.stop_daemon()
        for pid in self.namespace_pids():  # a qemu left behind by a failed test
            stop_pid(pid)
        if self.holder is not None:
            stop_pid(self.holder.pid)
            self.holder.wait(timeout=10)
            self.holder = None
        shutil.rmtree(self.root, ignore_errors=True)

"""A libvirtd of the test's own, which the test may stop and restart at will.

The machine's libvirtd manages other people's guests, so it is never restarted by a test.
This daemon runs in a private mount namespace: /etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/cache/libvirt and /var/log/libvirt are private directories there (so it sees none of
the system daemon's domains, pools or state), and its storage pools live on a tmpfs of a
chosen size (so a test can fill it), or on disk (``images_size=None``).

Two modes:

- default: only the mount namespace is private. The daemon's socket is outside it, and the
  URI ``qemu:///system?socket=...`` reaches it from the host.
- ``network=True``: a network namespace too (``unshare --mount --net``), given an uplink by
  ``slirp4netns --configure --cidr=10.99.0.0/24`` (user-mode networking: the namespace sees
  10.99.0.100, gateway 10.99.0.2, DNS 10.99.0.3; the host gets no interface, address, route
  or firewall rule). The namespace has its own /etc/resolv.conf (10.99.0.3) and loopback, and its own virtlogd and
  libvirtd on the default socket paths, so inside it ``qemu:///system`` is this daemon, and
  libvirt's NAT and isolated networks (bridges, dnsmasq, iptables rules) live there only.
  Whatever talks to a guest's private address (vmlab, ssh, an install server) runs inside
  with ``run()`` / ``command()``: ``nsenter -m -n --wd=CWD -t HOLDER``. From the host,
  ``uri`` reaches the daemon through its socket's path in the private /run/libvirt.

A holder process keeps the namespaces alive while the daemon is stopped; everything is
stopped by PID: the daemon, what else lives in the mount namespace (virtlogd, dnsmasq, qemu,
found with ``pgrep --ns HOLDER --nslist mnt``), slirp4netns, then the holder.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.lab_harness import START_LIBVIRTD
from tests.processes import namespace_pids, stop_pid

PRIVATE_DIRS = ("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt", "/var/cache/libvirt",
                "/var/log/libvirt")
#: The namespace's uplink subnet. Not slirp4netns's default 10.0.2.0/24: that is also QEMU
#: user-mode's, and a guest told to use QEMU's resolver 10.0.2.3 on a libvirt network (the
#: DNS default vmlab once had) would reach slirp4netns's resolver through the namespace's
#: route and pass where a real host fails.
SLIRP_CIDR = "10.99.0.0/24"
#: slirp4netns's DNS forwarder: the subnet's .3 (its gateway is .2, the namespace .100)
SLIRP_DNS = "10.99.0.3"
#: The namespace's own address on its uplink: there from the start, before any libvirt
#: network, and reached by the guests through their NAT network's gateway.
NAMESPACE_ADDRESS = "10.99.0.100"
#: The uplink as podman and rootlesskit give it: a large MTU is much faster through slirp;
#: host loopback stays unreachable (the namespace must not reach host services).
SLIRP_ARGS = ("--configure", "--mtu=65520", "--disable-host-loopback", f"--cidr={SLIRP_CIDR}")


class PrivateLibvirtd:
    def __init__(self, images_size: str | None = "3G", network: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="vmlab-private-libvirtd-"))
        self.images_size = images_size
        self.network = network
        self.socket_dir = self.root / "sock"
        self.pidfile = self.root / "libvirtd.pid"
        self.conf = self.root / "libvirtd.conf"
        self.holder: subprocess.Popen | None = None
        self.slirp: subprocess.Popen | None = None
        self.pid: int | None = None

    @property
    def uri(self) -> str:
        """The daemon's URI from the host (inside a network namespace: ``qemu:///system``)."""
        if self.network:
            return f"qemu:///system?socket={self.root}/ns/run/libvirt/libvirt-sock"
        return f"qemu:///system?socket={self.socket_dir}/libvirt-sock"

    @property
    def images(self) -> Path:
        """The directory under the pools, as seen from outside the namespace."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root/var/lib/libvirt/images")

    # -- life cycle -----------------------------------------------------------------------
    def start(self) -> "PrivateLibvirtd":
        try:
            self._start_holder()
            if self.network:
                self._start_slirp()
                self._start_virtlogd()
            self.start_daemon()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_holder(self) -> None:
        self.socket_dir.mkdir()
        for path in PRIVATE_DIRS:
            (self.root / "ns" / path.lstrip("/")).mkdir(parents=True)
        etc = self.root / "ns/etc/libvirt"
        if self.network:
            # libvirtd and virtlogd on their default paths in the private /run/libvirt
            self.conf.write_text("")
            (self.root / "resolv.conf").write_text(f"nameserver {SLIRP_DNS}\n")
        else:
            (etc / "qemu.conf").write_text('stdio_handler = "file"\n')
            self.conf.write_text(f'unix_sock_dir = "{self.socket_dir}"\n'
                                 'unix_sock_rw_perms = "0700"\n')
        steps = [f"mount --bind {self.root / 'ns' / p.lstrip('/')} {p}" for p in PRIVATE_DIRS]
        steps.append("mkdir -p /var/lib/libvirt/images /var/lib/libvirt/qemu "
                     "/var/cache/libvirt/qemu /var/log/libvirt/qemu /run/libvirt/qemu")
        if self.images_size is not None:
            steps.append(f"mount -t tmpfs -o size={self.images_size},mode=0755 "
                         "vmlab-test-pools /var/lib/libvirt/images")
        if self.network:
            # (a symlinked /etc/resolv.conf: the bind lands on its target, in this namespace)
            steps += [f"mount --bind {self.root / 'resolv.conf'} /etc/resolv.conf",
                      "ip link set lo up"]
        script = "set -e; " + "; ".join(steps) + "; echo ready; exec sleep infinity"
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if self.network:
            unshare.append("--net")
        self.holder = subprocess.Popen([*unshare, "--", "sh", "-c", script],
                                       stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
        assert self.holder.stdout is not None
        if self.holder.stdout.readline().strip() != "ready":
            raise RuntimeError("the private namespace could not be set up")

    def _start_slirp(self) -> None:
        """slirp4netns on the holder's network namespace; returns once tap0 is configured."""
        assert self.holder is not None
        if shutil.which("slirp4netns") is None:
            raise RuntimeError("slirp4netns is not installed (scripts/install-deps installs it)")
        read, write = os.pipe()
        try:
            self.slirp = subprocess.Popen(
                ["slirp4netns", *SLIRP_ARGS, f"--ready-fd={write}", str(self.holder.pid),
                 "tap0"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                stderr=open(self.root / "slirp4netns.log", "w"), start_new_session=True)
            os.close(write)
            write = -1
            ready = os.read(read, 1)  # "1" once configured; EOF when it died
        finally:
            os.close(read)
            if write >= 0:
                os.close(write)
        if ready != b"1":
            log = (self.root / "slirp4netns.log").read_text()
            raise RuntimeError(f"slirp4netns did not configure the namespace:\n{log}")

    def _start_virtlogd(self) -> None:
        self.run(["virtlogd", "-d", "-p", str(self.root / "virtlogd.pid")], check=True)

    def start_daemon(self) -> None:
        assert self.holder is not None
        self.pidfile.unlink(missing_ok=True)
        subprocess.run([*self.nsenter(), "--", str(START_LIBVIRTD), "-f", str(self.conf),
                        "-p", str(self.pidfile)], check=True)
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

    # -- running things inside ------------------------------------------------------------
    def nsenter(self, cwd: str | os.PathLike | None = None) -> list[str]:
        """The prefix that runs a command in the namespaces, in ``cwd`` (default: the
        caller's; without --wd nsenter would start in the namespace's idea of it, and
        relative paths would break)."""
        assert self.holder is not None
        flags = ["-m", "-n"] if self.network else ["-m"]
        return ["nsenter", *flags, f"--wd={cwd or os.getcwd()}", "-t", str(self.holder.pid)]

    def command(self, argv: list[str], cwd: str | os.PathLike | None = None) -> list[str]:
        return [*self.nsenter(cwd), "--", *argv]

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """subprocess.run of ``argv`` inside the namespaces."""
        return subprocess.run(self.command(argv, kwargs.pop("cwd", None)), **kwargs)

    def answers(self) -> bool:
        return subprocess.run(["virsh", "-c", self.uri, "version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    def virsh(self, *args: str, check: bool = True) -> str:
        return subprocess.run(["virsh", "-c", self.uri, *args], capture_output=True, text=True,
                              check=check).stdout

    def namespace_pids(self) -> list[int]:
        """Processes in the private mount namespace other than the holder (the daemon,
        virtlogd, dnsmasq, qemu, a command run inside)."""
        if self.holder is None:
            return []
        return [pid for pid in namespace_pids(self.holder.pid) if pid != self.holder.pid]

    def stop(self) -> None:
        if self.pid is not None and self.answers():
            # a guest a failed test left running: libvirt runs each qemu in a mount
            # namespace of its own (its private /dev), which the search below misses
            for name in self.virsh("list", "--name", check=False).split():
                self.virsh("destroy", name, check=False)
        self.stop_daemon()
        for pid in self.namespace_pids():  # virtlogd, dnsmasq, a qemu left by a failed test
            stop_pid(pid)
        if self.slirp is not None:
            stop_pid(self.slirp.pid)
            self.slirp.wait(timeout=10)
            self.slirp = None
        if self.holder is not None:
            stop_pid(self.holder.pid)
            self.holder.wait(timeout=10)
            self.holder = None
        shutil.rmtree(self.root, ignore_errors=True)

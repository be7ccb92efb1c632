"""Per-command cost of vmlab's stage runner against Fabric, Ansible and a bare floor.

All run N trivial commands (`true`) against an sshd started on 127.0.0.1 (tests/sshd.py):

- vmlab Session.run: one persistent shell on one channel, exact exit codes, every command
  logged to the stage's log file;
- the floor: one persistent bash on one paramiko channel, `echo <marker> $?` after each
  command, nothing else (`true` is a bash builtin: no process is started); a second floor
  row runs each command as vmlab does, in a subshell with its own stdin (one fork each);
- Fabric Connection.run: what a plain Fabric task does, a new exec channel per command;
- Ansible: an N-task playbook (`command: true`), pipelining on, OpenSSH with
  ControlMaster/ControlPersist (a warm-up play opens the master first), no fact gathering;
  the wall time of `ansible-playbook` divided by N. ansible-core comes from the
  benchmark's venv (.cache/bench-venv, made by `make bench`).

Each is repeated, the runners interleaved round by round; medians.
Usage: python bench/remote_commands.py [-n 200] [--runs 5] [--ansible-runs 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BENCH_VENV, median, save, table, target  # noqa: E402
from tests.sshd import Sshd  # noqa: E402
from vmlab.remote import Session, Target, open_session  # noqa: E402


def per_command(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n


class Floor:
    """One bash on one paramiko channel; a marker line carries each command's exit status."""

    def __init__(self, session: Session) -> None:
        transport = session.conn.client.get_transport()
        self.channel = transport.open_session()
        self.channel.exec_command("exec bash --noprofile --norc")
        self.buffer = b""

    def run(self, command: str) -> int:
        marker = uuid.uuid4().hex.encode()
        self.channel.sendall(command.encode() + b"\necho " + marker + b" $?\n")
        while True:
            at = self.buffer.find(marker + b" ")
            if at >= 0 and self.buffer.find(b"\n", at) >= 0:
                end = self.buffer.find(b"\n", at)
                code = int(self.buffer[at + len(marker) + 1:end])
                self.buffer = self.buffer[end + 1:]
                return code
            data = self.channel.recv(1 << 16)
            if not data:
                raise EOFError("the shell ended")
            self.buffer += data

    def close(self) -> None:
        self.channel.close()


class Ansible:
    """ansible-playbook against the loopback sshd, with pipelining and ControlPersist."""

    def __init__(self, tmp: Path, server: Sshd, n: int) -> None:
        self.dir = tmp / "ansible"
        self.dir.mkdir()
        self.bin = BENCH_VENV / "bin" / "ansible-playbook"
        if not self.bin.is_file():
            sys.exit(f"{self.bin} is missing: `make bench-venv` installs ansible-core")
        known = self.dir / "known_hosts"
        host_key = Path(f"{server.host_key}.pub").read_text().split()
        known.write_text(f"[127.0.0.1]:{server.port} {host_key[0]} {host_key[1]}\n")
        self.control = self.dir / "cp"
        self.control.mkdir()
        (self.dir / "inventory.ini").write_text(
            f"bench ansible_host=127.0.0.1 ansible_port={server.port} ansible_user=root "
            f"ansible_ssh_private_key_file={server.client_key} "
            f"ansible_python_interpreter={BENCH_VENV / 'bin' / 'python'}\n")
        self._playbook("warm.yml", 1)
        self._playbook("bench.yml", n)
        self.env = {**os.environ, "LC_ALL": "C.UTF-8", "ANSIBLE_HOME": str(self.dir / "home"),
                    "ANSIBLE_LOCAL_TEMP": str(self.dir / "tmp"), "ANSIBLE_PIPELINING": "True",
                    "ANSIBLE_HOST_KEY_CHECKING": "True", "ANSIBLE_SSH_CONTROL_PATH_DIR":
                    str(self.control), "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto "
                    f"-o ControlPersist=300s -o UserKnownHostsFile={known} "
                    "-o StrictHostKeyChecking=yes", "ANSIBLE_RETRY_FILES_ENABLED": "False",
                    "ANSIBLE_NOCOLOR": "1"}

    def _playbook(self, name: str, tasks: int) -> None:
        lines = ["- hosts: bench", "  gather_facts: false", "  tasks:"]
        lines += ["    - ansible.builtin.command: 'true'" for _ in range(tasks)]
        (self.dir / name).write_text("\n".join(lines) + "\n")

    def play(self, name: str) -> float:
        started = time.perf_counter()
        result = subprocess.run([str(self.bin), "-i", str(self.dir / "inventory.ini"),
                                 str(self.dir / name)], env=self.env, cwd=self.dir,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"ansible-playbook {name} failed:\n{result.stdout}{result.stderr}")
        return elapsed

    def close(self) -> None:
        """Stop the ControlPersist master this benchmark opened (by its control socket)."""
        for socket_path in self.control.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "bench"],
                           capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ansible-runs", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"vmlab": [], "floor": [], "floor-subshell": [],
                                     "fabric": [], "ansible": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = Sshd(tmp / "sshd").start()
        ansible = None
        try:
            target_ = Target("127.0.0.1", server.port, "root", server.client_key,
                             tmp / "known_hosts")
            ansible = Ansible(tmp, server, args.n)
            ansible.play("warm.yml")
            with open_session(target_, log_path=tmp / "stage.log") as session:
                floor = Floor(session)
                fabric = session.conn
                session.run("true"), floor.run("true"), fabric.run("true", hide=True)
                for round_ in range(args.runs):
                    times["vmlab"].append(per_command(lambda: session.run("true"), args.n))
                    times["floor"].append(per_command(lambda: floor.run("true"), args.n))
                    times["floor-subshell"].append(
                        per_command(lambda: floor.run("( eval true ) </dev/null"), args.n))
                    times["fabric"].append(
                        per_command(lambda: fabric.run("true", hide=True), args.n))
                    if round_ < args.ansible_runs:
                        times["ansible"].append(ansible.play("bench.yml") / args.n)
                floor.close()
            logged = (tmp / "stage.log").read_text().count("$ true")
        finally:
            if ansible is not None:
                ansible.close()
            server.stop()
    ms = {name: median(values) * 1000 for name, values in times.items()}
    labels = {
        "vmlab": "vmlab `Session.run` (persistent shell, logged)",
        "floor": "floor: one bash on one paramiko channel, exit-status marker",
        "floor-subshell": "floor, each command in a subshell as vmlab runs it",
        "fabric": "Fabric `Connection.run` (new exec channel per command)",
        "ansible": f"Ansible: {args.n}-task playbook, pipelining + ControlPersist, wall / {args.n}",
    }
    rows = [[labels[name], f"{ms[name]:.2f}", f"{ms[name] / ms['vmlab']:.2f}x"]
            for name in ("floor", "floor-subshell", "vmlab", "fabric", "ansible")]
    body = table(["runner", "ms per command", "of vmlab"], rows)
    ahead = ms["ansible"] / ms["vmlab"]
    save("remote_commands", f"Remote command overhead: {args.n} trivial commands over SSH",
         f"{args.n} commands (`true`) against an sshd on 127.0.0.1; {args.runs} rounds of the "
         f"Python runners, {args.ansible_runs} of Ansible, interleaved; medians. vmlab logged "
         f"{logged} commands to its stage log.", body,
         f"vmlab: {ms['vmlab']:.2f} ms/command (target at most 2 ms): "
         f"{target(ms['vmlab'] <= 2)}; Ansible / vmlab: {ahead:.0f}x (target at least 50x): "
         f"{target(ahead >= 50)}")


if __name__ == "__main__":
    main()

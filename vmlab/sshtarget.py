"""Where a guest's sshd answers and how to log in: what `vmlab ssh` and `ssh-config` print
and what vmlab.remote connects to (kept apart from it: it needs no SSH library)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Target:
    """Where the guest's sshd answers."""

    host: str
    port: int
    user: str
    key_file: Path
    known_hosts: Path
    #: ssh jump host (user, host, port, keyfile or None), when the guest is not reachable
    #: from here directly (a remote hypervisor's forwarded port).
    jump: tuple[str, str, int, str | None] | None = None

    def describe(self) -> str:
        via = f" via {self.jump[0]}@{self.jump[1]}:{self.jump[2]}" if self.jump else ""
        return f"{self.user}@{self.host}:{self.port}{via}"

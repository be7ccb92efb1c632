"""Per-command cost of vmlab's stage runner against a new exec channel per command.

Both run N trivial commands on one open SSH transport to an sshd started on 127.0.0.1:
vmlab's Session (one persistent shell, exact exit codes and per-command logs) against
Fabric's Connection.run (what a plain Fabric task does: a new exec channel per command).
Usage: python bench/remote_commands.py [-n 200]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.sshd import Sshd  # noqa: E402
from vmlab.remote import Target, open_session  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Sshd(Path(tmp) / "sshd").start()
        try:
            target = Target("127.0.0.1", server.port, "root", server.client_key,
                            Path(tmp) / "known_hosts")
            with open_session(target, log_path=Path(tmp) / "stage.log") as session:
                session.run("true")
                started = time.perf_counter()
                for _ in range(args.n):
                    session.run("true")
                vmlab = (time.perf_counter() - started) / args.n
                fabric = session.conn
                fabric.run("true", hide=True)
                started = time.perf_counter()
                for _ in range(args.n):
                    fabric.run("true", hide=True)
                channel = (time.perf_counter() - started) / args.n
            logged = (Path(tmp) / "stage.log").read_text().count("$ true")
        finally:
            server.stop()
    print(f"{args.n} commands on one SSH transport to 127.0.0.1")
    print(f"  vmlab Session.run (persistent shell): {vmlab * 1000:7.2f} ms/command "
          f"({logged} commands logged)")
    print(f"  Fabric Connection.run (new channel):  {channel * 1000:7.2f} ms/command")
    print(f"  ratio: {channel / vmlab:.0f}x")


if __name__ == "__main__":
    main()

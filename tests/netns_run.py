"""Run a command (by default the demo on libvirt networks) in a network namespace of its own,
with a private libvirtd: for hosts where libvirt may not add bridges, dnsmasq or NAT rules
to the host's network (`make demo-netns`).

    python -m tests.netns_run                 # the demo-nat lab: create, rollback, resume,
                                              # destroy (what `make demo-netns` runs)
    python -m tests.netns_run -- bash         # a shell inside, to look around (virsh,
                                              # vmlab, ip, iptables-save); exit to stop it

Inside, ``qemu:///system`` is the private daemon; vmlab's state is in a temporary
directory (the namespace and its labs end with the command). Everything is stopped at the
end by PID (tests/private_libvirtd.py); the host keeps no interface, route or rule.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.private_libvirtd import PrivateLibvirtd

REPO = Path(__file__).resolve().parent.parent
LAB = "demo-netns"
DEMO = f"""
set -x
vmlab create --profile demo-nat --lab {LAB} && vmlab status --lab {LAB} &&
virsh domiflist vmlab-{LAB} && virsh net-dhcp-leases vmlab-provider &&
vmlab rollback memcached-config --lab {LAB} && vmlab resume --lab {LAB} &&
vmlab snapshots --lab {LAB}
status=$?
vmlab destroy --lab {LAB} --yes
exit $status
"""


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    command = argv or ["bash", "-c", DEMO]
    if os.geteuid() != 0:
        print("netns_run: run as root (it makes namespaces and starts libvirtd)",
              file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="vmlab-netns-home-") as home:
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "XDG_STATE_HOME": f"{home}/state",
               "XDG_CONFIG_HOME": f"{home}/config",
               "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
               "PYTHONPATH": str(REPO)}
        daemon = PrivateLibvirtd(images_size=None, network=True)
        print(f"netns_run: starting a libvirtd in a network namespace ({daemon.root})",
              file=sys.stderr)
        daemon.start()
        try:
            print(f"netns_run: inside: {shlex.join(command)}", file=sys.stderr)
            return subprocess.run(daemon.command(command), env=env).returncode
        finally:
            print("netns_run: stopping the namespace's daemons", file=sys.stderr)
            daemon.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

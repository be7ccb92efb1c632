"""A stand-in `firewall-cmd` on PATH (firewalld itself needs systemd and D-Bus, which these
test machines lack). It answers the few queries vmlab makes, in firewall-cmd's own output
format, from a JSON state the test writes; every call is logged."""
from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

#: libvirt's zone as shipped (libvirt src/network/libvirt.zone) and firewalld's services.
LIBVIRT_ZONE = {"target": "ACCEPT", "services": ["dhcp", "dhcpv6", "dns", "ssh", "tftp"],
                "ports": [], "rich": ['rule priority="32767" reject']}
PUBLIC_ZONE = {"target": "default", "services": ["dhcpv6-client", "ssh"], "ports": [],
               "rich": []}
SERVICES = {"dhcp": ["67/udp"], "dhcpv6": ["547/udp"], "dns": ["53/tcp", "53/udp"],
            "ssh": ["22/tcp"], "tftp": ["69/udp"], "dhcpv6-client": ["546/udp"],
            "http": ["80/tcp"]}

SCRIPT = r'''
import json, sys
state = json.load(open(STATE))
with open(STATE + ".log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\n")
args = sys.argv[1:]
if state.get("refuse") and args != ["--state"]:  # --state needs no authorization
    print("Authorization failed.", file=sys.stderr)
    sys.exit(1)
if args == ["--state"]:
    print("running" if state["running"] else "not running")
    sys.exit(0 if state["running"] else 252)
if not state["running"]:
    print("FirewallD is not running", file=sys.stderr)
    sys.exit(252)
if args == ["--get-default-zone"]:
    print(state["default"])
    sys.exit(0)
if len(args) == 1 and args[0].startswith("--get-zone-of-interface="):
    zone = state["interfaces"].get(args[0].split("=", 1)[1])
    print(zone or "no zone")
    sys.exit(0 if zone else 2)
if len(args) == 1 and args[0].startswith("--info-service="):
    name = args[0].split("=", 1)[1]
    print(name)
    print("  ports: " + " ".join(state["services"][name]))
    print("  protocols: ")
    sys.exit(0)
if len(args) == 2 and args[0].startswith("--zone=") and args[1] == "--list-all":
    name = args[0].split("=", 1)[1]
    if name not in state["zones"]:
        print(f"Error: INVALID_ZONE: {name}", file=sys.stderr)
        sys.exit(112)
    zone = state["zones"][name]
    print(f"{name} (active)")
    print(f"  target: {zone['target']}")
    print("  icmp-block-inversion: no")
    print("  interfaces: ")
    print("  sources: ")
    print("  services: " + " ".join(zone["services"]))
    print("  ports: " + " ".join(zone["ports"]))
    print("  protocols: icmp ipv6-icmp")
    print("  forward: no")
    print("  masquerade: no")
    print("  rich rules: ")
    for rule in zone["rich"]:
        print("\t" + rule)
    sys.exit(0)
print(f"fake firewall-cmd: unexpected {args}", file=sys.stderr)
sys.exit(2)
'''


class FakeFirewalld:
    def __init__(self, directory: Path) -> None:
        self.state_file = directory / "firewalld.json"
        self.state = json.loads(json.dumps({  # a deep copy: tests change it
            "running": True, "default": "public", "refuse": False,
            "zones": {"libvirt": LIBVIRT_ZONE, "public": PUBLIC_ZONE,
                      "trusted": {"target": "ACCEPT", "services": [], "ports": [], "rich": []}},
            "interfaces": {}, "services": SERVICES}))
        self.save()

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state))

    def calls(self) -> list[str]:
        log = Path(str(self.state_file) + ".log")
        return log.read_text().splitlines() if log.is_file() else []


def install(directory: Path, monkeypatch) -> FakeFirewalld:
    """Put the stand-in first on PATH; the returned object's ``state`` is what it answers
    (call ``save()`` after changing it)."""
    bindir = directory / "firewalld-bin"
    bindir.mkdir()
    fake = FakeFirewalld(directory)
    script = bindir / "firewall-cmd"
    script.write_text(f"#!{sys.executable}\nSTATE = {str(fake.state_file)!r}\n{SCRIPT}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return fake

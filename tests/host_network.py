"""What a test must leave as it found it: the host's own interfaces, addresses, routes and
firewall rules, read before and after (the labs run in a namespace of their own)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass

LIFETIMES = ("valid_life_time", "preferred_life_time")


@dataclass(frozen=True)
class HostNetwork:
    addresses: str
    routes: str
    firewall: str

    def differences(self, later: "HostNetwork") -> list[str]:
        """What changed from this snapshot to ``later``, one line per part."""
        return [f"{part} changed:\n--- before\n{getattr(self, part)}\n--- after\n"
                f"{getattr(later, part)}"
                for part in ("addresses", "routes", "firewall")
                if getattr(self, part) != getattr(later, part)]


def _ip(*args: str) -> list:
    return json.loads(subprocess.run(["ip", "-j", *args], capture_output=True, text=True,
                                     check=True).stdout or "[]")


def _addresses() -> str:
    links = _ip("addr")
    for link in links:  # lifetimes count down on their own
        for info in link.get("addr_info", []):
            for key in LIFETIMES:
                info.pop(key, None)
    return json.dumps(links, indent=1, sort_keys=True)


def _firewall() -> str:
    """iptables-save without its comment lines (a timestamp) and packet counters."""
    if shutil.which("iptables-save") is None:
        raise RuntimeError("iptables-save is not installed (scripts/install-deps installs it)")
    text = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    lines = [re.sub(r"\[\d+:\d+\]", "[counters]", line) for line in text.splitlines()
             if not line.startswith("#")]
    return "\n".join(lines)


def snapshot() -> HostNetwork:
    return HostNetwork(addresses=_addresses(),
                       routes=json.dumps(_ip("route") + _ip("-6", "route"), indent=1,
                                         sort_keys=True),
                       firewall=_firewall())

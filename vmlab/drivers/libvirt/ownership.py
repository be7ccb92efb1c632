"""The ownership tag in a vmlab domain's <metadata>: its lab and everything made for it."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

VMLAB_NS = "https://vmlab.dev/xmlns/lab/1"
ET.register_namespace("vmlab", VMLAB_NS)


@dataclass
class Ownership:
    """What the domain's <metadata> records: the lab and everything made for it."""

    lab: str
    created: str
    volumes: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    #: guest port -> host port on 127.0.0.1 of the hypervisor host
    forwards: dict[int, int] = field(default_factory=dict)
    serial_log: str = ""
    provider_mac: str = ""
    home: str = ""
    #: the guest's static address SSH reaches it at ("": the provider NIC's DHCP lease)
    ssh_address: str = ""

    def to_element(self) -> ET.Element:
        element = ET.Element(f"{{{VMLAB_NS}}}lab", {
            "name": self.lab, "created": self.created,
            "volumes": " ".join(self.volumes), "networks": " ".join(self.networks),
            "forwards": " ".join(f"{g}:{h}" for g, h in sorted(self.forwards.items())),
            "serial_log": self.serial_log, "provider_mac": self.provider_mac,
            "home": self.home})
        if self.ssh_address:
            element.set("ssh_address", self.ssh_address)
        return element

    def to_xml(self) -> str:
        return ET.tostring(self.to_element(), encoding="unicode")

    @classmethod
    def from_xml(cls, text: str) -> "Ownership":
        element = ET.fromstring(text)
        forwards = {}
        for pair in element.get("forwards", "").split():
            guest, host = pair.split(":")
            forwards[int(guest)] = int(host)
        return cls(lab=element.get("name", ""), created=element.get("created", ""),
                   volumes=element.get("volumes", "").split(),
                   networks=element.get("networks", "").split(), forwards=forwards,
                   serial_log=element.get("serial_log", ""),
                   provider_mac=element.get("provider_mac", ""),
                   home=element.get("home", ""),
                   ssh_address=element.get("ssh_address", ""))

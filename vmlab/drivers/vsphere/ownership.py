"""vmlab's ownership tag on a vSphere VM: extraConfig keys ``vmlab.*`` (plus a note in the
annotation). A VM without ``vmlab.lab`` is not vmlab's and is never touched."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

from pyVmomi import vim

LAB = "vmlab.lab"
HOME = "vmlab.home"
CREATED = "vmlab.created"
#: JSON list of the port groups the VM owns (made for it, or inherited from a VM that did).
NETWORKS = "vmlab.networks"
#: JSON list of the datastore files (``vmlab-media/...``) its CD-ROMs use.
MEDIA = "vmlab.media"
PROVIDER_MAC = "vmlab.provider_mac"
GUESTINFO = "guestinfo.vmlab."


def _list(text: str | None) -> list[str]:
    if not text:
        return []
    if text.startswith("["):
        return [str(item) for item in json.loads(text)]
    return text.split()  # the first format: names separated by spaces


@dataclass
class Owner:
    lab: str
    home: str = ""
    created: datetime | None = None
    networks: list[str] = field(default_factory=list)
    media: list[str] = field(default_factory=list)
    provider_mac: str = ""

    @classmethod
    def read(cls, extra: dict[str, str]) -> "Owner | None":
        if LAB not in extra:
            return None
        try:
            created = datetime.fromisoformat(extra[CREATED]) if extra.get(CREATED) else None
        except ValueError:
            created = None
        return cls(lab=extra[LAB], home=extra.get(HOME, ""), created=created,
                   networks=_list(extra.get(NETWORKS)), media=_list(extra.get(MEDIA)),
                   provider_mac=extra.get(PROVIDER_MAC, "").lower())

    def options(self) -> list[vim.option.OptionValue]:
        values = {LAB: self.lab, HOME: self.home,
                  CREATED: self.created.isoformat(timespec="seconds") if self.created else "",
                  NETWORKS: json.dumps(self.networks), MEDIA: json.dumps(self.media),
                  PROVIDER_MAC: self.provider_mac}
        return [vim.option.OptionValue(key=k, value=v) for k, v in values.items()]


def extra_config(options: Iterable[Any] | None) -> dict[str, str]:
    return {o.key: str(o.value) for o in options or [] if o.value is not None}


def annotation(owner: Owner) -> str:
    return (f"Created by vmlab for lab {owner.lab}; vmlab owns this VM and removes it with "
            f"`vmlab destroy --lab {owner.lab}`.")


def vmware_mac(mac: str) -> bool:
    """Inside 00:50:56:00:00:00-00:50:56:3f:ff:ff, where vSphere takes static MACs as is."""
    parts = mac.lower().split(":")
    return parts[:3] == ["00", "50", "56"] and int(parts[3], 16) <= 0x3F

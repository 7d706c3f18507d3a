"""The launch wizard's draft: the choices made so far, and Nova's create request they make.

The draft travels in one hidden form field (JSON) from screen to screen: no server-side
state, any API process serves any screen, and Back keeps every choice. It is the user's
own input like any other field, so nothing trusts it: Nova checks the request it becomes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

MAX_COUNT = 100  # one form launches at most this many; Nova's quota decides below that
SOURCES = ("image", "volume")


class DraftError(ValueError):
    """A choice the wizard cannot turn into a request (a missing flavor, a bad count)."""


@dataclass
class Draft:
    source: str = "image"
    image: str = ""
    volume: str = ""
    flavor: str = ""
    name: str = ""
    count: int = 1
    networks: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    key_name: str = ""
    # Whether the network screen was shown: its defaults (the default security group, the
    # only network) are filled in on the first visit, never over the user's choice.
    networks_chosen: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Draft:
        """The draft of a form's hidden field; an unreadable one starts afresh."""
        try:
            raw = json.loads(text) if text else {}
        except ValueError:
            raw = {}
        draft = cls()
        if not isinstance(raw, dict):
            return draft
        for f in fields(cls):
            value = raw.get(f.name)
            default = getattr(draft, f.name)
            if isinstance(default, list) and isinstance(value, list):
                setattr(draft, f.name, [str(v) for v in value if isinstance(v, str)])
            elif isinstance(default, bool) and isinstance(value, bool):
                setattr(draft, f.name, value)
            elif isinstance(default, int) and not isinstance(default, bool):
                if isinstance(value, int) and not isinstance(value, bool):
                    setattr(draft, f.name, value)
            elif isinstance(default, str) and isinstance(value, str):
                setattr(draft, f.name, value)
        return draft

    def take_source(self, form: dict[str, str]) -> None:
        """Screen 1's fields: source, image or volume, flavor, name, count."""
        self.source = form.get("source", self.source)
        self.image = form.get("image", self.image)
        self.volume = form.get("volume", self.volume)
        self.flavor = form.get("flavor", self.flavor)
        self.name = form.get("name", self.name).strip()
        text = form.get("count", str(self.count)).strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_COUNT:
            raise DraftError(f"Count must be a whole number from 1 to {MAX_COUNT}.")
        self.count = int(text)

    def take_networks(self, networks: list[str], groups: list[str], key_name: str) -> None:
        """Screen 2's fields: networks, security groups, key pair."""
        self.networks = list(dict.fromkeys(networks))
        self.security_groups = list(dict.fromkeys(groups))
        self.key_name = key_name
        self.networks_chosen = True

    def check_source(self) -> None:
        """What screen 1 must give before screen 2 (Nova would refuse without it)."""
        if self.source not in SOURCES:
            raise DraftError("Choose an image or a volume to boot from.")
        if not self.name:
            raise DraftError("Give the instance a name.")
        if self.source == "image" and not self.image:
            raise DraftError("Choose an image.")
        if self.source == "volume" and not self.volume:
            raise DraftError("Choose a volume.")
        if not self.flavor:
            raise DraftError("Choose a flavor.")

    def nova_request(self) -> dict[str, Any]:
        """Nova's ``POST /servers`` body, as the openstack CLI would send it: the count as
        min_count = max_count (all or none), networks by id (none chosen: Nova's choice)."""
        server: dict[str, Any] = {"name": self.name, "flavorRef": self.flavor}
        if self.source == "volume":
            server["block_device_mapping_v2"] = [
                {
                    "boot_index": 0,
                    "uuid": self.volume,
                    "source_type": "volume",
                    "destination_type": "volume",
                    "delete_on_termination": False,
                }
            ]
        else:
            server["imageRef"] = self.image
        server["min_count"] = self.count
        server["max_count"] = self.count
        if self.networks:  # none chosen: Nova picks (the project's only network, if any)
            server["networks"] = [{"uuid": n} for n in self.networks]
        if self.security_groups:
            server["security_groups"] = [{"name": g} for g in self.security_groups]
        if self.key_name:
            server["key_name"] = self.key_name
        return {"server": server}

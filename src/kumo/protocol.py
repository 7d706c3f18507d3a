"""Typed pieces of the agent API that both sides import (DESIGN.md section 4): the agent
builds them, the control plane parses them, neither writes the dict by hand.

Additions keep older peers working: a field an old agent does not send is None on the
control plane's side, and an old control plane ignores what it does not know.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# The agent API versions this release speaks, newest last: the agent offers them when it
# registers and the control plane serves them (DESIGN.md section 4). `kumo --version`
# prints them. A new version is appended here, and the previous one stays for a release so
# that agents can be upgraded host by host.
AGENT_API_VERSIONS: tuple[str, ...] = ("v1",)


@dataclass(frozen=True)
class HostLoad:
    """What `uptime` tells about a host: seconds since it booted, its load averages over
    1, 5 and 15 minutes, and how many users are logged in. Sent with each heartbeat (and
    the registration), so os-hypervisors/{id}/uptime can answer as Nova's does."""

    uptime_seconds: float
    load_average: tuple[float, float, float]
    users: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "uptime_seconds": self.uptime_seconds,
            "load_average": list(self.load_average),
            "users": self.users,
        }

    @classmethod
    def from_dict(cls, data: Any) -> HostLoad:
        """Raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("load must be an object")
        uptime: Any = data.get("uptime_seconds")
        loads, users = data.get("load_average"), data.get("users")
        if not _number(uptime) or uptime < 0:
            raise ValueError("load.uptime_seconds must be a number of seconds, 0 or more")
        if not isinstance(loads, list) or len(loads) != 3 or not all(_number(x) for x in loads):
            raise ValueError("load.load_average must be three numbers")
        if not isinstance(users, int) or isinstance(users, bool) or users < 0:
            raise ValueError("load.users must be a whole number, 0 or more")
        return cls(float(uptime), (float(loads[0]), float(loads[1]), float(loads[2])), users)


@dataclass(frozen=True)
class ConsoleEndpoints:
    """Where a running guest's remote consoles listen on its host: the address (the host's
    console listen address, loopback unless configured) with the VNC server's port and the
    serial console's TCP port. A port is None when the guest has no such console (a guest
    started before kumo gave guests consoles). Sent with each observation of a guest; the
    console proxy of the API connects there.

    ``display``: the guest's display device as its QEMU has it (``vga``, ``none``: the VNC
    console then shows no screen of the guest's); None from an agent older than displays,
    whose guests have none. Kept by the control plane so that a live migration's
    destination starts the guest with the very device the source runs it with."""

    address: str
    vnc_port: int | None = None
    serial_port: int | None = None
    display: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "vnc_port": self.vnc_port,
            "serial_port": self.serial_port,
            "display": self.display,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ConsoleEndpoints:
        """Raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("consoles must be an object")
        address = data.get("address")
        if not isinstance(address, str) or not address or len(address) > 255:
            raise ValueError("consoles.address must be a host address")
        ports: list[int | None] = []
        for key in ("vnc_port", "serial_port"):
            port = data.get(key)
            if port is not None and (
                not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536
            ):
                raise ValueError(f"consoles.{key} must be a TCP port (1-65535) or null")
            ports.append(port)
        display = data.get("display")
        if display is not None and not (
            isinstance(display, str) and display.isalnum() and len(display) <= DISPLAY_MAX
        ):
            raise ValueError(
                f"consoles.display must be a display model (letters and digits, at most "
                f"{DISPLAY_MAX}) or null"
            )
        return cls(address, ports[0], ports[1], display)


DISPLAY_MAX = 16  # characters of a display model's name (``vga``, ``none``...)


# What an agent may report of a port or a floating IP (Neutron's statuses for both).
STATUSES = ("ACTIVE", "DOWN", "ERROR")


@dataclass(frozen=True)
class NetworkStatus:
    """What a host's agent observed of its datapath after applying it: each port's status
    (``ports``), the ports it could not bind and why (``faults``), and the status of each
    floating IP of the routers it carries (``floating_ips``: ACTIVE once its router holds
    the address and the NAT). ``floating_ips`` is None from an agent older than it: then
    no floating IP changes."""

    ports: dict[str, str]
    faults: dict[str, str]
    floating_ips: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ports": dict(self.ports), "faults": dict(self.faults)}
        if self.floating_ips is not None:
            body["floating_ips"] = dict(self.floating_ips)
        return body

    @classmethod
    def from_dict(cls, data: Any) -> NetworkStatus:
        """Raises ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("Expecting {'ports': {...}, 'faults': {...}, 'floating_ips': {...}}.")
        ports = _keyed(data.get("ports"), "ports", "port", STATUSES)
        faults = _keyed(data.get("faults"), "faults", "port", None)
        fips = data.get("floating_ips")
        floating_ips = (
            None if fips is None else _keyed(fips, "floating_ips", "floating IP", STATUSES)
        )
        return cls(ports, faults, floating_ips)


def _keyed(raw: Any, name: str, kind: str, allowed: tuple[str, ...] | None) -> dict[str, str]:
    """An object of strings keyed by id (absent: empty); with ``allowed``, each value one
    of those statuses."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ValueError(f"'{name}' must be an object of strings keyed by {kind} id.")
    if allowed is not None and any(v not in allowed for v in raw.values()):
        raise ValueError(f"A {kind} status is one of {list(allowed)}.")
    return dict(raw)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def virtio_disk_name(index: int) -> str:
    """The Linux kernel's name for a guest's index-th virtio disk (0: vda, 25: vdz, 26:
    vdaa, ...): what the control plane reports as a volume's device and what a driver shows
    the guest calling it, so the two cannot disagree."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("a") + rest) + name
    return "vd" + name

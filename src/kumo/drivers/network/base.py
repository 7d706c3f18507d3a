"""The network driver interface: hand it the whole desired state, get back what changed.

`apply` is level-triggered and idempotent: called again with the same spec it changes
nothing; called by a new driver object over the same state directory (an agent restart)
it adopts what is there instead of rebuilding it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from kumo.drivers.network.capabilities import Capabilities
from kumo.drivers.network.netns import NetworkError
from kumo.drivers.network.spec import HostNetworkSpec, RouterSpec

__all__ = ["NetworkDriver", "NetworkError", "Report", "router_fault"]


@dataclass
class Report:
    """What one `apply` did. `faults` maps a network, port, DHCP or router id to why it
    could not be realised (a VLAN network on a kernel without 802.1Q: a binding fault for
    each of its ports); everything else in the spec was still applied."""

    changes: list[str] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def router_fault(router: RouterSpec, bound: set[str]) -> str | None:
    """Why a router cannot be built here: a leg on a network this apply did not set up
    (the router is then left out whole, and its ports and floating IPs stay DOWN)."""
    missing = [n for n in router.leg_networks() if n not in bound]
    return f"router needs networks not set up here: {', '.join(missing)}" if missing else None


class NetworkDriver(ABC):
    """One host's datapath. Drivers keep their files (pidfiles, rendered rules, the last
    applied spec) under `state_dir` and know nothing of the database or the API."""

    name: str = ""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)

    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What this host can do (network types, stateful security groups) and why not."""

    @abstractmethod
    def apply(self, spec: HostNetworkSpec) -> Report:
        """Make the host match `spec`: create what is missing, fix what differs, remove
        kumo's own resources that are no longer listed; leave what is right alone."""

    @abstractmethod
    def adopt(self) -> HostNetworkSpec | None:
        """The spec last applied from this state directory (None: nothing yet), after a
        restart; the next `apply` with it recreates nothing."""

    @abstractmethod
    def teardown(self) -> Report:
        """Remove everything this driver made (namespaces it created, devices, rules)."""

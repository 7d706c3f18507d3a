"""The agent's network loop: fetch this host's network desired state from the agent API,
complete it with what only the host knows (its namespace, underlay and physical
interfaces), hand the whole of it to the network driver, and report what it observed:
the ports' status and that of the floating IPs of the routers it carries.

Level-triggered (DESIGN.md rule 2): the answer is complete, so a lost wake-up or a
restart only delays convergence. The API's revision digest lets an unchanged state cost
one small request; a full re-apply still runs every ``resync`` seconds so drift on the
host (a device removed by hand) is repaired.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from kumo.agent.metadata import MetadataService
from kumo.drivers.network import names
from kumo.drivers.network.base import NetworkDriver
from kumo.drivers.network.spec import HostNetworkSpec, Underlay
from kumo.protocol import NetworkStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HostNetworkConfig:
    """What the host contributes to its datapath spec (agent configuration)."""

    host_namespace: str | None = None
    underlay: Underlay | None = None
    physical_networks: dict[str, str] = field(default_factory=dict)

    def nic_namespace(self) -> str:
        return self.host_namespace or ""


def _carried(network: dict[str, Any], local: HostNetworkConfig) -> dict[str, Any]:
    """A VXLAN network on a host without an underlay (the all-in-one cloud) that no other
    host shares is just this host's bridge: carried as a local network."""
    if network.get("type") == "vxlan" and local.underlay is None and not network.get("peers"):
        return {**network, "type": "local"}
    return network


def _unmappable(network: dict[str, Any], local: HostNetworkConfig) -> str | None:
    """Why this host cannot carry a network whatever its kernel can do (configuration)."""
    kind = network.get("type")
    physnet = network.get("physical_network")
    if kind in ("flat", "vlan") and physnet not in local.physical_networks:
        return (
            f"physical network {physnet!r} has no interface on this host: map it in the "
            "agent's physical_networks"
        )
    if kind == "vxlan" and local.underlay is None:
        return "VXLAN needs an underlay: set the agent's underlay_interface and underlay_ip"
    return None


def complete_spec(
    desired: dict[str, Any], local: HostNetworkConfig
) -> tuple[HostNetworkSpec, dict[str, str]]:
    """The API's desired state plus the host's own parts, as the driver's spec, and the
    faults of what this host cannot carry (left out of the spec, so the rest is applied)."""
    faults: dict[str, str] = {}
    networks = []
    for network in desired.get("networks", []):
        carried = _carried(network, local)
        reason = _unmappable(carried, local)
        if reason:
            faults[network["id"]] = reason
        else:
            networks.append(carried)
    ports = []
    for port in desired.get("ports", []):
        if port["network_id"] in faults:
            faults[port["id"]] = (
                f"binding failed: network {port['network_id']}: " + faults[port["network_id"]]
            )
        else:
            ports.append({**port, "tap": names.tap(port["id"])})
    routers = []
    for router in desired.get("routers", []):
        gateway = router.get("gateway")
        routers.append(
            {
                **router,
                "interfaces": [i for i in router["interfaces"] if i["network_id"] not in faults],
                "gateway": gateway
                if gateway is None or gateway["network_id"] not in faults
                else None,
            }
        )
    spec = HostNetworkSpec.from_dict(
        {
            "host_namespace": local.host_namespace,
            "underlay": asdict(local.underlay) if local.underlay else None,
            "networks": networks,
            "physical_networks": dict(local.physical_networks),
            "ports": ports,
            "dhcp": [d for d in desired.get("dhcp", []) if d["network_id"] not in faults],
            "routers": routers,
        }
    )
    return spec, faults


def router_ports_up(routers: list[dict[str, Any]], faults: dict[str, str]) -> dict[str, bool]:
    """Each router port of the desired state: plugged (True) when its router was applied
    without a fault and its network is carried here. A port with legs on several subnets
    is up only when all are."""
    up: dict[str, bool] = {}
    for router in routers:
        gateway = router.get("gateway")
        for leg in [*router.get("interfaces", []), *([gateway] if gateway else [])]:
            port_id = leg.get("port_id")
            if port_id:
                plugged = router["id"] not in faults and leg["network_id"] not in faults
                up[port_id] = up.get(port_id, True) and plugged
    return up


def floating_ips_applied(routers: list[dict[str, Any]], faults: dict[str, str]) -> dict[str, str]:
    """Each floating IP of the desired state: ACTIVE when its router was applied without a
    fault with its gateway leg (which holds the address) and the interface that reaches
    the fixed address (the NAT's other side), else DOWN. Entries without an id (from a
    control plane older than floating IP statuses) are left out."""
    applied: dict[str, str] = {}
    for router in routers:
        gateway = router.get("gateway")
        plugged = [
            ipaddress.ip_interface(f"{leg['ip']}/{leg['prefixlen']}").network
            for leg in router.get("interfaces", [])
            if leg["network_id"] not in faults
        ]
        routed = (
            router["id"] not in faults
            and gateway is not None
            and gateway["network_id"] not in faults
        )
        for fip in router.get("floating_ips", []):
            if "id" not in fip:
                continue
            fixed = ipaddress.ip_address(fip["fixed_ip"])
            up = routed and any(fixed in net for net in plugged)
            applied[fip["id"]] = "ACTIVE" if up else "DOWN"
    return applied


class NetworkLoop:
    """Keeps the host's datapath equal to what the control plane says."""

    def __init__(
        self,
        client: httpx.Client,
        api: str,
        host_id: str,
        driver: NetworkDriver,
        local: HostNetworkConfig,
        poll_wait: float = 20.0,
        resync: float = 60.0,
    ) -> None:
        self.client = client
        self.api = api
        self.host_id = host_id
        self.driver = driver
        self.local = local
        self.poll_wait = poll_wait
        self.resync = resync
        self._applied: str | None = None
        self._applied_at = 0.0
        self._observed = NetworkStatus({}, {}, {})  # by the last pass that applied
        self._reported: NetworkStatus | None = None
        self._faults: dict[str, str] = {}
        self._desired_ports: set[str] = set()
        self._mark = -1  # where the last long-poll for changes left off
        self.metadata = MetadataService(client, api, host_id)
        self._lock = threading.Lock()

    def sync_once(self, force: bool = False) -> bool:
        """One pass; True when the driver was called."""
        with self._lock:
            response = self.client.get(f"{self.api}/hosts/{self.host_id}/network")
            response.raise_for_status()
            desired: dict[str, Any] = response.json()
            revision = desired.get("revision")
            recorded: dict[str, str] = desired.get("floating_ip_statuses") or {}
            stale = time.monotonic() - self._applied_at > self.resync
            if not force and not stale and revision == self._applied:
                self._send(recorded)  # a floating IP's recorded status may have moved
                return False
            spec, unmappable = complete_spec(desired, self.local)
            self._desired_ports = {p["id"] for p in desired.get("ports", [])}
            report = self.driver.apply(spec)
            report.faults.update(unmappable)
            if report.changes:
                log.info("network: %s", "; ".join(report.changes[:20]))
            if self._applied is None:  # the first pass since the agent started
                log.info(
                    "network: first pass over %d ports: %s",
                    len(spec.ports),
                    f"{len(report.changes)} changes" if report.changes else "adopted as found",
                )
            self._applied = revision
            self._applied_at = time.monotonic()
            dhcp_ports = {d["network_id"]: d.get("port_id") for d in desired.get("dhcp", [])}
            self._serve_metadata(spec)
            self._log_faults(report.faults)
            desired_routers = desired.get("routers", [])
            routers = router_ports_up(desired_routers, report.faults)
            fips = floating_ips_applied(desired_routers, report.faults)
            self._observed = self._observe(spec, report.faults, dhcp_ports, routers, fips)
            self._send(recorded)
            return True

    def _log_faults(self, faults: dict[str, str]) -> None:
        """Each fault when it appears or changes (a DHCP server or router fault has no port
        of its own to show it on), not again at every resync."""
        for key, reason in sorted(faults.items()):
            if self._faults.get(key) != reason:
                log.warning("network: %s: %s", key, reason)
        self._faults = dict(faults)

    def _serve_metadata(self, spec: HostNetworkSpec) -> None:
        """A metadata server in each DHCP namespace that announces the metadata route."""
        open_socket = getattr(self.driver, "metadata_socket", None)
        if open_socket is None:
            return
        self.metadata.ensure({d.network_id for d in spec.dhcp if d.metadata}, open_socket)

    def _observe(
        self,
        spec: HostNetworkSpec,
        faults: dict[str, str],
        dhcp_ports: dict[str, str | None],
        router_ports: dict[str, bool],
        floating_ips: dict[str, str],
    ) -> NetworkStatus:
        """Port status: ACTIVE once plugged (admin up), DOWN when admin down, a binding
        fault when the host cannot carry the port's network; a router's ports ACTIVE once
        its namespace has them, else DOWN; its floating IPs as applied."""
        statuses: dict[str, str] = {}
        port_faults: dict[str, str] = {}
        for port in spec.ports:
            fault = faults.get(port.id) or faults.get(port.network_id)
            if fault:
                port_faults[port.id] = fault
            else:
                statuses[port.id] = "ACTIVE"
        for key, fault in faults.items():
            if key not in port_faults and key in self._desired_ports:
                port_faults[key] = fault
        for network_id, port_id in dhcp_ports.items():
            if port_id and not faults.get(network_id):
                statuses[port_id] = "ACTIVE"
        for port_id, up in router_ports.items():
            statuses[port_id] = "ACTIVE" if up else "DOWN"
        return NetworkStatus(statuses, port_faults, floating_ips)

    def _send(self, recorded: dict[str, str]) -> None:
        """Report what the last pass observed when it changed since the last report, or
        when a floating IP's status recorded by the control plane differs from it (as
        Neutron's L3 agent compares with the router data it is sent): the API sets a
        floating IP DOWN itself when it is disassociated."""
        observed = self._observed
        moved = any(recorded.get(k) != v for k, v in (observed.floating_ips or {}).items())
        if observed == self._reported and not moved:
            return
        response = self.client.post(
            f"{self.api}/hosts/{self.host_id}/network/status", json=observed.to_dict()
        )
        response.raise_for_status()
        self._reported = observed

    def _wait_for_change(self) -> None:
        """Long-poll until a networking write commits (or ``poll_wait`` passes: then the
        next pass is the periodic resync). The mark is fetched first, so a change made
        while the pass before was applying is not missed."""
        url = f"{self.api}/hosts/{self.host_id}/network/changes"
        if self._mark < 0:
            self._mark = int(self.client.get(url).raise_for_status().json()["mark"])
            return  # changes before this mark may have been missed by the pass: sync again
        response = self.client.get(
            url,
            params={"since": self._mark, "wait": self.poll_wait},
            timeout=self.poll_wait + 10,
        )
        self._mark = int(response.raise_for_status().json()["mark"])

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.sync_once()
                self._wait_for_change()
            except httpx.HTTPError as exc:
                log.warning("network sync: agent API: %s", exc)
                stop.wait(2.0)
            except Exception:
                log.exception("network sync failed; retrying")
                stop.wait(2.0)
        self.metadata.close()

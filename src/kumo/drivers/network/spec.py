"""The desired state of one host's network datapath: plain frozen data, no I/O.

The agent builds a `HostNetworkSpec` from what the control plane says belongs on its host
and hands the whole of it to `NetworkDriver.apply`. Being complete (not a delta) is what
makes the datapath level-triggered: the driver can always compare it with what the kernel
has and converge, after a crash, a restart or a lost message alike.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

NETWORK_TYPES = ("flat", "vlan", "vxlan", "local")


@dataclass(frozen=True)
class Underlay:
    """The host's underlay: the interface and local IP that carry VXLAN traffic."""

    interface: str
    local_ip: str
    mtu: int = 1500


@dataclass(frozen=True)
class NetworkSpec:
    """One L2 network present on this host. `peers` are the underlay IPs of the other hosts
    that have ports on it (VXLAN only): static FDB entries, no multicast."""

    id: str
    type: str
    segmentation_id: int | None = None
    physical_network: str | None = None
    mtu: int = 1500
    peers: tuple[str, ...] = ()


@dataclass(frozen=True)
class FixedIp:
    ip: str
    prefixlen: int


@dataclass(frozen=True)
class AddressPair:
    """An allowed address pair: `ip` may be a single address or a CIDR; `mac` empty means
    the port's own MAC."""

    ip: str
    mac: str = ""


@dataclass(frozen=True)
class SecurityRule:
    """A security-group rule compiled by the caller (remote groups already expanded into
    `remote_ip_prefix` values: one rule per prefix)."""

    direction: str  # "ingress" | "egress"
    ethertype: str = "IPv4"  # "IPv4" | "IPv6"
    protocol: int | None = None  # IP protocol number; None = any
    port_range_min: int | None = None
    port_range_max: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    remote_ip_prefix: str | None = None


@dataclass(frozen=True)
class PortSpec:
    """A guest NIC: a tap device (or an existing device of that name, adopted as it is)
    on its network's bridge."""

    id: str
    network_id: str
    mac: str
    fixed_ips: tuple[FixedIp, ...] = ()
    tap: str = ""
    port_security_enabled: bool = True
    allowed_address_pairs: tuple[AddressPair, ...] = ()
    rules: tuple[SecurityRule, ...] = ()


@dataclass(frozen=True)
class HostRoute:
    destination: str
    nexthop: str


@dataclass(frozen=True)
class SubnetSpec:
    cidr: str
    gateway: str | None = None
    dns_servers: tuple[str, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    dhcp_ip: str = ""  # the DHCP server's own address on this subnet


@dataclass(frozen=True)
class StaticLease:
    mac: str
    ip: str
    hostname: str = ""


@dataclass(frozen=True)
class DhcpSpec:
    """DHCP (and the metadata plumbing) for one network."""

    network_id: str
    mac: str
    subnets: tuple[SubnetSpec, ...] = ()
    leases: tuple[StaticLease, ...] = ()
    mtu: int | None = None  # announced as option 26; None = the network's MTU
    metadata: bool = False
    lease_seconds: int = 86400


@dataclass(frozen=True)
class RouterInterface:
    network_id: str
    ip: str
    prefixlen: int
    mac: str


@dataclass(frozen=True)
class RouterGateway:
    network_id: str
    ip: str
    prefixlen: int
    gateway_ip: str | None = None
    mac: str = ""
    snat: bool = True


@dataclass(frozen=True)
class FloatingIp:
    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True)
class RouterSpec:
    id: str
    interfaces: tuple[RouterInterface, ...] = ()
    gateway: RouterGateway | None = None
    floating_ips: tuple[FloatingIp, ...] = ()
    routes: tuple[HostRoute, ...] = ()

    def leg_networks(self) -> list[str]:
        """The networks the router has a leg on: its interfaces', then its gateway's."""
        return [i.network_id for i in self.interfaces] + (
            [self.gateway.network_id] if self.gateway else []
        )


@dataclass(frozen=True)
class HostNetworkSpec:
    """Everything the datapath of one host should be. `host_namespace` None means the root
    namespace (a real hypervisor); tests and the all-in-one cloud name one."""

    host_namespace: str | None
    underlay: Underlay | None = None
    networks: tuple[NetworkSpec, ...] = ()
    physical_networks: dict[str, str] = field(default_factory=dict)
    ports: tuple[PortSpec, ...] = ()
    dhcp: tuple[DhcpSpec, ...] = ()
    routers: tuple[RouterSpec, ...] = ()

    def network(self, network_id: str) -> NetworkSpec:
        for net in self.networks:
            if net.id == network_id:
                return net
        raise KeyError(f"network {network_id} is not in the host spec")

    def validate(self) -> list[str]:
        """Problems that make the spec unusable as a whole, in words for the operator."""
        problems: list[str] = []
        ids = {n.id for n in self.networks}
        for net in self.networks:
            if net.type not in NETWORK_TYPES:
                problems.append(f"network {net.id}: unknown type {net.type!r}")
            if net.type in ("vlan", "vxlan") and net.segmentation_id is None:
                problems.append(f"network {net.id}: {net.type} needs a segmentation id")
            if net.type in ("flat", "vlan") and net.physical_network not in self.physical_networks:
                problems.append(
                    f"network {net.id}: physical network {net.physical_network!r} has no "
                    "interface mapping on this host (physical_networks)"
                )
            if net.type == "vxlan" and self.underlay is None:
                problems.append(f"network {net.id}: vxlan needs the host's underlay")
        for port in self.ports:
            if port.network_id not in ids:
                problems.append(f"port {port.id}: network {port.network_id} not in spec")
        for dhcp in self.dhcp:
            if dhcp.network_id not in ids:
                problems.append(f"dhcp: network {dhcp.network_id} not in spec")
            for subnet in dhcp.subnets:
                ipaddress.ip_network(subnet.cidr)
        for router in self.routers:
            problems += [
                f"router {router.id}: network {n} not in spec"
                for n in router.leg_networks()
                if n not in ids
            ]
        return problems

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostNetworkSpec:
        return _build(cls, data)


T = TypeVar("T")


def _convert(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = get_origin(hint)
    args = get_args(hint)
    if origin is tuple:
        return tuple(_convert(args[0], v) for v in value)
    if origin is dict:
        return dict(value)
    if args and origin is not None:  # Optional[X] / X | None
        inner = [a for a in args if a is not type(None)]
        return _convert(inner[0], value) if len(inner) == 1 else value
    if isinstance(hint, type) and is_dataclass(hint):
        return _build(hint, value)
    return value


def _build(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild nested frozen dataclasses from their `asdict` form (JSON round trip)."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    kwargs = {k: _convert(hints[k], v) for k, v in data.items() if k in known}
    return cls(**kwargs)

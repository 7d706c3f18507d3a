"""Subnets: an IPv4 or IPv6 range on a network, its gateway, allocation pools (what IPAM
hands out), DNS servers and host routes; carved from a subnet pool when asked.

Validation follows Neutron: a CIDR with host bits set, a gateway outside the CIDR, pools
outside it or overlapping each other are 400s; a gateway inside a pool is 409.
"""

from __future__ import annotations

import ipaddress
import itertools
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.network import ipam, quotas, standard, subnetpools, tags
from kumo.core.network.networks import get_network
from kumo.core.network.scope import owner_project, owns
from kumo.core.policy import Context
from kumo.db import models as m

RESOURCE = "subnets"
MAX_DNS = 5
MAX_ROUTES = 20
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
# Ports whose addresses go with the subnet (Neutron's AUTO_DELETE_PORT_OWNERS).
AUTO_DELETE_OWNERS = ("network:dhcp",)
READ_ONLY = ("cidr", "ip_version", "network_id", "subnetpool_id", "prefixlen", "segment_id")

Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Addr = ipaddress.IPv4Address | ipaddress.IPv6Address


def not_found(subnet_id: str) -> NotFound:
    return NotFound(f"Subnet {subnet_id} could not be found.", kind="SubnetNotFound")


def _visible_network_ids(ctx: Context) -> Any:
    from kumo.core.network.networks import visible

    return select(m.Network.id).where(visible(ctx))


def visible(ctx: Context) -> Any:
    """Subnets the caller may see: those of networks it may see."""
    if ctx.is_admin:
        return m.Subnet.id.is_not(None)
    return m.Subnet.network_id.in_(_visible_network_ids(ctx))


def get_subnet(session: Session, ctx: Context, subnet_id: str) -> m.Subnet:
    subnet = session.get(m.Subnet, subnet_id)
    if subnet is None:
        raise not_found(subnet_id)
    try:
        get_network(session, ctx, subnet.network_id)
    except NotFound:
        raise not_found(subnet_id) from None
    return subnet


def owned_subnet(session: Session, ctx: Context, subnet_id: str) -> m.Subnet:
    subnet = get_subnet(session, ctx, subnet_id)
    if not owns(ctx, subnet.project_id):
        raise Forbidden(f"(rule:update_subnet) is disallowed by policy for subnet {subnet_id}")
    return subnet


def list_subnets(session: Session, ctx: Context) -> list[m.Subnet]:
    return list(session.scalars(select(m.Subnet).where(visible(ctx)).order_by(m.Subnet.created_at)))


# --- attribute checks ----------------------------------------------------------------------


def parse_cidr(value: Any, key: str = "cidr") -> Net:
    """A network CIDR as Neutron accepts it: host bits set is refused, naming the right one."""
    if not isinstance(value, str) or "/" not in value:
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not a valid IP subnet.")
    try:
        return ipaddress.ip_network(value.strip())
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise BadRequest(
            f"Invalid input for {key}. Reason: '{value}' is not a valid IP subnet."
        ) from None
    raise BadRequest(
        f"Invalid input for {key}. Reason: '{value}' isn't a recommended CIDR, "
        f"'{loose}' is recommended."
    )


def _ip(value: Any, key: str) -> Addr:
    return ipam.parse_ip(value, key)


def _ip_version(attrs: dict[str, Any]) -> int | None:
    raw = attrs.get("ip_version")
    if raw is None:
        return None
    if isinstance(raw, bool) or str(raw) not in ("4", "6"):
        raise BadRequest(f"Invalid input for ip_version. Reason: {raw} is not in [4, 6].")
    return int(raw)


def _bounds(net: Net) -> tuple[int, int]:
    """First and last addresses a host may use (IPv4 loses network and broadcast)."""
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.version == 4 and net.num_addresses > 2:
        return first + 1, last - 1
    if net.version == 6 and net.num_addresses > 1:
        return first + 1, last
    return first, last


def _make(net: Net, value: int) -> str:
    return str(ipaddress.IPv4Address(value) if net.version == 4 else ipaddress.IPv6Address(value))


def default_pools(net: Net, gateway: str | None) -> list[dict[str, str]]:
    """The whole usable range less the gateway, as Neutron makes it."""
    first, last = _bounds(net)
    ranges = [(first, last)]
    if gateway is not None:
        gw = int(ipaddress.ip_address(gateway))
        ranges = [
            part
            for lo, hi in ranges
            for part in ((lo, min(hi, gw - 1)), (max(lo, gw + 1), hi))
            if part[0] <= part[1]
        ]
    return [{"start": _make(net, lo), "end": _make(net, hi)} for lo, hi in ranges]


def _gateway(net: Net, value: Any) -> str | None:
    if value is None:
        return None
    address = _ip(value, "gateway_ip")
    if address.version != net.version or address not in net:
        raise BadRequest(
            f"Invalid input for operation: Gateway IP {value} is not within the subnet "
            f"{net} (choose an address of the CIDR, or null for no gateway).",
            kind="InvalidInput",
        )
    if net.num_addresses > 2 and (
        address == net.network_address or (net.version == 4 and address == net.broadcast_address)
    ):
        raise BadRequest(
            f"Gateway ip {value} conflicts with the network or broadcast address of {net}.",
            kind="InvalidInput",
        )
    return str(address)


def _pools(net: Net, raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid input for allocation_pools. Reason: '{raw}' is not a list.")
    ranges: list[tuple[int, int]] = []
    first, last = _bounds(net)
    for pool in raw:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise BadRequest(
                f"Invalid input for allocation_pools. Reason: '{pool}' must have exactly "
                "start and end."
            )
        start = _ip(pool["start"], "allocation_pools")
        end = _ip(pool["end"], "allocation_pools")
        if start.version != net.version or end.version != net.version:
            raise BadRequest(
                f"The allocation pool {pool['start']}-{pool['end']} is not IPv{net.version}."
            )
        lo, hi = int(start), int(end)
        if lo > hi:
            raise BadRequest(
                f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}: its "
                "start is after its end.",
                kind="InvalidAllocationPool",
            )
        if lo < first or hi > last:
            raise BadRequest(
                f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                kind="OutOfBoundsAllocationPool",
            )
        ranges.append((lo, hi))
    ranges.sort()
    for (lo1, hi1), (lo2, hi2) in itertools.pairwise(ranges):
        if lo2 <= hi1:
            raise BadRequest(
                f"Found overlapping allocation pools: {_make(net, lo1)}-{_make(net, hi1)} "
                f"and {_make(net, lo2)}-{_make(net, hi2)} for subnet {net}.",
                kind="OverlappingAllocationPools",
            )
    return [{"start": _make(net, lo), "end": _make(net, hi)} for lo, hi in ranges]


def _check_gateway_outside_pools(
    net: Net, gateway: str | None, pools: list[dict[str, str]]
) -> None:
    if gateway is None:
        return
    gw = int(ipaddress.ip_address(gateway))
    for pool in pools:
        if int(ipaddress.ip_address(pool["start"])) <= gw <= int(ipaddress.ip_address(pool["end"])):
            raise Conflict(
                f"Gateway ip {gateway} conflicts with allocation pool "
                f"{pool['start']}-{pool['end']}.",
                kind="GatewayConflictWithAllocationPools",
            )


def _dns(version: int, raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid input for dns_nameservers. Reason: '{raw}' is not a list.")
    found: list[str] = []
    for item in raw:
        address = str(_ip(item, "dns_nameservers"))
        if address in found:
            raise BadRequest(
                f"Invalid input for dns_nameservers. Reason: Duplicate nameserver '{item}'."
            )
        found.append(address)
    if len(found) > MAX_DNS:
        raise BadRequest(
            f"Unable to complete operation for the subnet. The number of DNS nameservers "
            f"exceeds the limit {MAX_DNS}.",
            kind="DNSNameServersExhausted",
        )
    return found


def _routes(version: int, raw: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid input for host_routes. Reason: '{raw}' is not a list.")
    found: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise BadRequest(
                f"Invalid input for host_routes. Reason: '{item}' must have exactly "
                "destination and nexthop."
            )
        destination = parse_cidr(item["destination"], "host_routes")
        nexthop = _ip(item["nexthop"], "host_routes")
        if destination.version != version or nexthop.version != version:
            raise BadRequest(
                f"Invalid input for host_routes: route {item} is not IPv{version}.",
                kind="InvalidInput",
            )
        route = {"destination": str(destination), "nexthop": str(nexthop)}
        if route in found:
            raise BadRequest(
                f"Invalid input for host_routes. Reason: Duplicate hostroute '{item}'."
            )
        found.append(route)
    if len(found) > MAX_ROUTES:
        raise BadRequest(
            f"Unable to complete operation for the subnet. The number of host routes "
            f"exceeds the limit {MAX_ROUTES}.",
            kind="HostRoutesExhausted",
        )
    return found


def _ipv6_modes(version: int, attrs: dict[str, Any]) -> tuple[str | None, str | None]:
    ra = attrs.get("ipv6_ra_mode")
    address = attrs.get("ipv6_address_mode")
    for key, value in (("ipv6_ra_mode", ra), ("ipv6_address_mode", address)):
        if value is not None and value not in IPV6_MODES:
            raise BadRequest(
                f"Invalid input for {key}. Reason: '{value}' is not in {list(IPV6_MODES)}."
            )
    if (ra or address) and version == 4:
        raise BadRequest(
            "Invalid input for operation: ipv6_ra_mode or ipv6_address_mode cannot be set when "
            "enable_dhcp is set to False or for an IPv4 subnet.",
            kind="InvalidInput",
        )
    if ra and address and ra != address:
        raise BadRequest(
            f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode "
            f"set to '{address}' is not valid. If both attributes are set, they must be the "
            "same value.",
            kind="InvalidInput",
        )
    return ra, address


def _check_overlap(session: Session, network_id: str, net: Net, exclude: str | None = None) -> None:
    for other in session.scalars(select(m.Subnet).where(m.Subnet.network_id == network_id)):
        if other.id == exclude:
            continue
        theirs = ipaddress.ip_network(other.cidr)
        if theirs.version == net.version and theirs.overlaps(net):
            raise BadRequest(
                f"Invalid input for operation: Requested subnet with cidr: {net} for network: "
                f"{network_id} overlaps with another subnet.",
                kind="InvalidInput",
            )


# --- lifecycle -----------------------------------------------------------------------------


def _cidr_and_pool(
    session: Session, ctx: Context, project_id: str, attrs: dict[str, Any], version: int | None
) -> tuple[Net, m.SubnetPool | None]:
    pool: m.SubnetPool | None = None
    pool_id = attrs.get("subnetpool_id")
    if pool_id is not None:
        pool = subnetpools.get_subnetpool(session, ctx, pool_id)
    elif standard.boolean(attrs, "use_default_subnetpool"):
        if version is None:
            raise BadRequest(
                "Failed to parse request. Required attribute 'ip_version' not specified"
            )
        pool = subnetpools.default_pool(session, version)
        if pool is None:
            raise BadRequest(
                f"No default subnetpool found for IPv{version}: create one with is_default or "
                "give a cidr.",
                kind="BadRequest",
            )
    if pool is not None and version is not None and pool.ip_version != version:
        raise BadRequest(
            f"Cannot allocate IPv{version} subnet from IPv{pool.ip_version} subnet pool.",
            kind="InvalidInput",
        )
    raw_cidr = attrs.get("cidr")
    if raw_cidr is not None:
        net = parse_cidr(raw_cidr)
        if pool is not None:
            subnetpools.check_request(session, pool, net)
        return net, pool
    if pool is None:
        raise BadRequest(
            "Bad subnets request: a subnetpool must be specified in the absence of a cidr.",
            kind="BadRequest",
        )
    return subnetpools.carve(session, pool, attrs.get("prefixlen")), pool


def create_subnet(session: Session, ctx: Context, attrs: dict[str, Any]) -> m.Subnet:
    """Create a subnet from Neutron request attributes (names already checked)."""
    project_id = owner_project(ctx, attrs)
    network_id = attrs.get("network_id")
    if not isinstance(network_id, str) or not network_id:
        raise BadRequest("Failed to parse request. Required attribute 'network_id' not specified")
    quotas.check_quota(session, project_id, "subnet")
    network = get_network(session, ctx, network_id)
    if not owns(ctx, network.project_id):
        raise Forbidden("(rule:create_subnet) is disallowed by policy")
    version = _ip_version(attrs)
    net, pool = _cidr_and_pool(session, ctx, project_id, attrs, version)
    if version is None:
        if attrs.get("cidr") is not None or pool is None:
            raise BadRequest(
                "Failed to parse request. Required attribute 'ip_version' not specified"
            )
        version = pool.ip_version
    if net.version != version:
        raise BadRequest(
            f"Invalid input for operation: cidr {net} is not an IPv{version} network "
            "(ip_version and cidr must agree).",
            kind="InvalidInput",
        )
    _check_overlap(session, network.id, net)
    if "gateway_ip" in attrs:
        gateway = _gateway(net, attrs["gateway_ip"])
    else:
        first, _ = _bounds(net)
        gateway = _make(net, first) if net.num_addresses > 1 else None
    if attrs.get("allocation_pools") is not None:
        pools = _pools(net, attrs["allocation_pools"])
        _check_gateway_outside_pools(net, gateway, pools)
    else:
        pools = default_pools(net, gateway)
    ra, address_mode = _ipv6_modes(version, attrs)
    if address_mode in ("slaac", "dhcpv6-stateless") and net.prefixlen != 64:
        raise BadRequest(
            f"Invalid CIDR {net} for IPv6 address mode {address_mode}: hosts derive their "
            "addresses from their MACs (EUI-64), which needs a /64 prefix.",
            kind="InvalidInput",
        )
    enable_dhcp = standard.boolean(attrs, "enable_dhcp")
    subnet = m.Subnet(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id=project_id,
        name=standard.text(attrs, "name") or "",
        description=standard.text(attrs, "description") or "",
        ip_version=version,
        cidr=str(net),
        gateway_ip=gateway,
        enable_dhcp=True if enable_dhcp is None else enable_dhcp,
        dns_nameservers=_dns(version, attrs.get("dns_nameservers")),
        host_routes=_routes(version, attrs.get("host_routes")),
        allocation_pools=pools,
        ipv6_ra_mode=ra,
        ipv6_address_mode=address_mode,
        subnetpool_id=pool.id if pool is not None else None,
        service_types=_service_types(attrs.get("service_types")),
        revision_number=0,
    )
    session.add(subnet)
    session.flush()
    return subnet


def _service_types(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise BadRequest(
            f"Invalid input for service_types. Reason: '{raw}' is not a list of strings."
        )
    return raw


def update_subnet(
    session: Session, ctx: Context, subnet_id: str, attrs: dict[str, Any]
) -> m.Subnet:
    subnet = owned_subnet(session, ctx, subnet_id)
    for key in READ_ONLY:
        if key in attrs and attrs[key] != getattr(subnet, key, None):
            raise BadRequest(f"Cannot update read-only attribute {key}")
    net = ipaddress.ip_network(subnet.cidr)
    for key in ("name", "description"):
        value = standard.text(attrs, key)
        if value is not None:
            setattr(subnet, key, value)
    dhcp = standard.boolean(attrs, "enable_dhcp")
    if dhcp is not None:
        subnet.enable_dhcp = dhcp
    if "dns_nameservers" in attrs:
        subnet.dns_nameservers = _dns(subnet.ip_version, attrs["dns_nameservers"])
    if "host_routes" in attrs:
        subnet.host_routes = _routes(subnet.ip_version, attrs["host_routes"])
    if "service_types" in attrs:
        subnet.service_types = _service_types(attrs["service_types"])
    gateway = _gateway(net, attrs["gateway_ip"]) if "gateway_ip" in attrs else subnet.gateway_ip
    pools = (
        _pools(net, attrs["allocation_pools"])
        if attrs.get("allocation_pools") is not None
        else subnet.allocation_pools
    )
    if "gateway_ip" in attrs or attrs.get("allocation_pools") is not None:
        _check_gateway_outside_pools(net, gateway, pools)
    if gateway != subnet.gateway_ip and gateway is not None:
        holder = session.scalar(
            select(m.Port.device_owner)
            .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
            .where(m.IPAllocation.subnet_id == subnet.id, m.IPAllocation.ip_address == gateway)
        )
        if holder is not None and not holder.startswith("network:router"):
            raise Conflict(
                f"Gateway ip {gateway} conflicts with an address already allocated on subnet "
                f"{subnet.id}.",
                kind="GatewayIpInUse",
            )
    subnet.gateway_ip = gateway
    subnet.allocation_pools = pools
    if "ipv6_ra_mode" in attrs or "ipv6_address_mode" in attrs:
        merged = {
            "ipv6_ra_mode": attrs.get("ipv6_ra_mode", subnet.ipv6_ra_mode),
            "ipv6_address_mode": attrs.get("ipv6_address_mode", subnet.ipv6_address_mode),
        }
        subnet.ipv6_ra_mode, subnet.ipv6_address_mode = _ipv6_modes(subnet.ip_version, merged)
    standard.touch(subnet)
    session.flush()
    return subnet


def delete_subnet(session: Session, ctx: Context, subnet_id: str) -> None:
    """Delete a subnet. Addresses of DHCP ports go with it; any other port holding an
    address keeps it (409 SubnetInUse: delete those ports or remove the address first)."""
    subnet = owned_subnet(session, ctx, subnet_id)
    holders = session.execute(
        select(m.Port.id, m.Port.device_owner)
        .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
        .where(m.IPAllocation.subnet_id == subnet.id)
    ).all()
    if any(owner not in AUTO_DELETE_OWNERS for _, owner in holders):
        raise Conflict(
            f"Unable to complete operation on subnet {subnet.id}: One or more ports have an IP "
            "allocation from this subnet.",
            kind="SubnetInUse",
        )
    session.execute(delete(m.IPAllocation).where(m.IPAllocation.subnet_id == subnet.id))
    tags.drop_tags(session, RESOURCE, subnet.id)
    session.delete(subnet)
    session.flush()

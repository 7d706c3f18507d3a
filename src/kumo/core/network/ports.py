"""Ports: virtual NICs on a network, with their MAC, fixed IPs (IPAM), security groups and
binding. Every change is one transaction; the database's unique keys (MAC per network,
address per subnet) keep racing creates apart.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.network import ipam, quotas, standard, tags
from kumo.core.network.default_group import default_group_id
from kumo.core.network.networks import get_network
from kumo.core.network.scope import owner_project, owns
from kumo.core.policy import Context
from kumo.db import models as m

RESOURCE = "ports"
MAC_PREFIX = "fa:16:3e"
MAC_ATTEMPTS = 16
_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")
VNIC_TYPES = (
    "normal",
    "direct",
    "macvtap",
    "baremetal",
    "direct-physical",
    "virtio-forwarder",
    "smart-nic",
    "vdpa",
    "remote-managed",
)
# Ports a router or a floating IP owns: the port API may not delete them (Neutron 409).
PROTECTED_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip")
ROUTER_INTERFACE = "network:router_interface"
DHCP_OWNER = "network:dhcp"
FIXED_IP_KEYS = frozenset({"subnet_id", "ip_address"})


# --- lookups -------------------------------------------------------------------------------


def visible(ctx: Context) -> ColumnElement[bool]:
    """Ports the caller may see: its own and those on its networks (admins: all)."""
    if ctx.is_admin:
        return true()
    project = ctx.project_id or ""
    own_networks = select(m.Network.id).where(m.Network.project_id == project)
    return or_(m.Port.project_id == project, m.Port.network_id.in_(own_networks))


def not_found(port_id: str) -> NotFound:
    return NotFound(f"Port {port_id} could not be found.", kind="PortNotFound")


def get_port(session: Session, ctx: Context, port_id: str) -> m.Port:
    """The port if the caller may see it, else 404 PortNotFound."""
    port = session.get(m.Port, port_id)
    if port is None:
        raise not_found(port_id)
    if not ctx.is_admin and port.project_id != ctx.project_id:
        network = session.get(m.Network, port.network_id)
        if network is None or network.project_id != ctx.project_id:
            raise not_found(port_id)
    return port


def _owned_port(session: Session, ctx: Context, port_id: str) -> m.Port:
    port = get_port(session, ctx, port_id)
    if not owns(ctx, port.project_id):
        network = session.get(m.Network, port.network_id)
        if network is None or not owns(ctx, network.project_id):
            raise not_found(port_id)
    return port


def fixed_ips_of(session: Session, port_ids: Iterable[str]) -> dict[str, list[dict[str, str]]]:
    """Fixed IPs of many ports in one query: port id -> [{subnet_id, ip_address}]."""
    wanted = list(port_ids)
    found: dict[str, list[dict[str, str]]] = {p: [] for p in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(m.IPAllocation.port_id, m.IPAllocation.subnet_id, m.IPAllocation.ip_address)
        .join(m.Subnet, m.Subnet.id == m.IPAllocation.subnet_id)
        .where(m.IPAllocation.port_id.in_(wanted))
        .order_by(m.Subnet.ip_version, m.Subnet.created_at, m.IPAllocation.ip_address)
    )
    for port_id, subnet_id, ip in rows:
        found.setdefault(port_id, []).append({"subnet_id": subnet_id, "ip_address": ip})
    return found


def security_groups_of(session: Session, port_ids: Iterable[str]) -> dict[str, list[str]]:
    """Security group ids of many ports in one query."""
    wanted = list(port_ids)
    found: dict[str, list[str]] = {p: [] for p in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(m.PortSecurityGroup.port_id, m.PortSecurityGroup.security_group_id).where(
            m.PortSecurityGroup.port_id.in_(wanted)
        )
    )
    for port_id, group_id in rows:
        found.setdefault(port_id, []).append(group_id)
    for groups in found.values():
        groups.sort()
    return found


def port_view_data(session: Session, port_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """What a port's view needs beyond its row, for many ports in two queries:
    port id -> {"fixed_ips": [...], "security_groups": [...]}."""
    wanted = list(port_ids)
    fixed = fixed_ips_of(session, wanted)
    groups = security_groups_of(session, wanted)
    return {p: {"fixed_ips": fixed[p], "security_groups": groups[p]} for p in wanted}


# --- attribute checks ----------------------------------------------------------------------


def normalise_mac(value: Any) -> str:
    if not isinstance(value, str) or not _MAC.match(value):
        raise BadRequest(
            f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address."
        )
    mac = value.lower().replace("-", ":")
    first = int(mac[:2], 16)
    if mac in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff") or first & 1:
        raise BadRequest(
            f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address."
        )
    return mac


def random_mac() -> str:
    return MAC_PREFIX + "".join(f":{b:02x}" for b in secrets.token_bytes(3))


def _list(attrs: dict[str, Any], key: str) -> list[Any] | None:
    if key not in attrs:
        return None
    value = attrs[key]
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not a list.")
    return value


def _fixed_ip_requests(
    session: Session, network: m.Network, raw: list[Any], device_owner: str
) -> list[tuple[m.Subnet, str | None]]:
    """(subnet, requested address or None) for each item of a ``fixed_ips`` request."""
    subnets = _subnets(session, network.id)
    by_id = {s.id: s for s in subnets}
    requests: list[tuple[m.Subnet, str | None]] = []
    seen: set[tuple[str, str]] = set()
    for item in raw:
        if not isinstance(item, dict) or not item or set(item) - FIXED_IP_KEYS:
            raise BadRequest(
                f"Invalid input for fixed_ips. Reason: '{item}' must be an object with "
                "subnet_id and/or ip_address."
            )
        subnet_id = item.get("subnet_id")
        ip = item.get("ip_address")
        if ip is not None:
            ip = str(ipam.parse_ip(ip, "fixed_ips"))
        if subnet_id is not None:
            subnet = by_id.get(subnet_id) if isinstance(subnet_id, str) else None
            if subnet is None:
                raise BadRequest(
                    f"Invalid input for operation: Failed to create port on network "
                    f"{network.id}, because fixed_ips included invalid subnet {subnet_id}.",
                    kind="InvalidInput",
                )
        elif ip is not None:
            address = ipaddress.ip_address(ip)
            matches = [s for s in subnets if address in ipam.network_of(s)]
            if not matches:
                raise BadRequest(
                    f"IP address {ip} is not a valid IP for any of the subnets on the "
                    "specified network.",
                    kind="InvalidIpForNetwork",
                )
            subnet = matches[0]
        else:  # pragma: no cover - excluded by the key check above
            raise BadRequest("fixed_ips items need subnet_id or ip_address.")
        router_port = device_owner.startswith(ROUTER_INTERFACE)
        if ip is None and router_port and subnet.gateway_ip:
            # A router interface on a subnet takes the subnet's gateway address.
            ip = subnet.gateway_ip
        if item.get("ip_address") is not None and ipam.is_auto_address(subnet) and not router_port:
            raise BadRequest(
                f"IPv6 address {ip} cannot be directly assigned to a port on subnet "
                f"{subnet.id}: its hosts configure their own addresses ("
                f"{subnet.ipv6_address_mode}).",
                kind="AllocationOnAutoAddressSubnet",
            )
        if ip is not None:
            if (subnet.id, ip) in seen:
                raise BadRequest(f"Duplicate IP address '{ip}'.")
            seen.add((subnet.id, ip))
        requests.append((subnet, ip))
    return requests


def _check_shared_network_policy(attrs: dict[str, Any]) -> None:
    """Neutron's policy on another project's (shared) network: only its owner picks MACs,
    addresses and network:* device owners there."""
    if attrs.get("mac_address") is not None:
        raise Forbidden("(rule:create_port:mac_address) is disallowed by policy")
    fixed = attrs.get("fixed_ips")
    if isinstance(fixed, list) and any(isinstance(f, dict) and "ip_address" in f for f in fixed):
        raise Forbidden("(rule:create_port:fixed_ips:ip_address) is disallowed by policy")
    owner = attrs.get("device_owner")
    if isinstance(owner, str) and owner.startswith("network:"):
        raise Forbidden("(rule:create_port:device_owner) is disallowed by policy")


def _subnets(session: Session, network_id: str) -> list[m.Subnet]:
    return list(
        session.scalars(
            select(m.Subnet)
            .where(m.Subnet.network_id == network_id)
            .order_by(m.Subnet.created_at, m.Subnet.id)
        )
    )


def _security_groups(session: Session, ctx: Context, project_id: str, raw: list[Any]) -> list[str]:
    ids: list[str] = []
    for group_id in raw:
        if not isinstance(group_id, str):
            raise BadRequest(
                f"Invalid input for security_groups. Reason: '{group_id}' is not a valid UUID."
            )
        if group_id in ids:
            continue
        group = session.get(m.SecurityGroup, group_id)
        if group is None or (group.project_id != project_id and not ctx.is_admin):
            raise NotFound(
                f"Security group {group_id} does not exist", kind="SecurityGroupNotFound"
            )
        ids.append(group_id)
    return ids


def _address_pairs(raw: list[Any], port_mac: str) -> list[dict[str, str]]:
    """The pairs as stored and shown: one given without mac_address gets the port's MAC, as
    Neutron stores it (so the same pair written both ways is a duplicate)."""
    pairs: list[dict[str, str]] = []
    for item in raw:
        if (
            not isinstance(item, dict)
            or "ip_address" not in item
            or set(item)
            - {
                "ip_address",
                "mac_address",
            }
        ):
            raise BadRequest(
                "Invalid input for allowed_address_pairs. Reason: each pair needs ip_address "
                "and may have mac_address.",
                kind="AllowedAddressPairsMissingIP",
            )
        ip = item["ip_address"]
        try:
            if not isinstance(ip, str):
                raise TypeError(ip)
            ipaddress.ip_network(ip, strict=False)
        except (TypeError, ValueError):
            raise BadRequest(
                f"Invalid input for allowed_address_pairs. Reason: '{ip}' is not a valid IP "
                "address or CIDR."
            ) from None
        mac = item.get("mac_address")
        pair = {"ip_address": ip, "mac_address": port_mac if mac is None else normalise_mac(mac)}
        if pair in pairs:
            raise BadRequest(
                "Request contains duplicate address pair: mac_address "
                f"{pair['mac_address']} ip_address {ip}.",
                kind="DuplicateAddressPairInRequest",
            )
        pairs.append(pair)
    return pairs


def _dhcp_opts(raw: list[Any]) -> list[dict[str, Any]]:
    opts = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("opt_name"), str):
            raise BadRequest(
                "Invalid input for extra_dhcp_opts: each needs opt_name and opt_value."
            )
        version = item.get("ip_version", 4)
        if version not in (4, 6, "4", "6"):
            raise BadRequest(f"Invalid input for ip_version. Reason: '{version}' is not 4 or 6.")
        opts.append(
            {
                "opt_name": item["opt_name"],
                "opt_value": item.get("opt_value"),
                "ip_version": int(version),
            }
        )
    return opts


def _binding(port: m.Port, attrs: dict[str, Any]) -> None:
    if "binding:host_id" in attrs:
        host = attrs["binding:host_id"]
        if host is not None and not isinstance(host, str):
            raise BadRequest(
                f"Invalid input for binding:host_id. Reason: '{host}' is not a string."
            )
        port.binding_host_id = host or None
    if "binding:vnic_type" in attrs:
        vnic = attrs["binding:vnic_type"]
        if vnic not in VNIC_TYPES:
            raise BadRequest(
                f"Invalid input for binding:vnic_type. Reason: '{vnic}' is not in "
                f"{list(VNIC_TYPES)}."
            )
        port.binding_vnic_type = vnic
    if "binding:profile" in attrs:
        profile = attrs["binding:profile"]
        if profile is not None and not isinstance(profile, dict):
            raise BadRequest(
                f"Invalid input for binding:profile. Reason: '{profile}' is not a dict."
            )
        port.binding_profile = profile or {}


def _plain(port: m.Port, attrs: dict[str, Any]) -> None:
    """Attributes that are just stored (name, description, device, DNS name, admin state)."""
    for key, limit in (
        ("name", 255),
        ("description", 255),
        ("device_id", 255),
        ("device_owner", 255),
    ):
        value = standard.text(attrs, key, limit)
        if value is not None:
            setattr(port, key, value)
    dns_name = standard.text(attrs, "dns_name", 255)
    if dns_name is not None:
        port.dns_name = dns_name
    admin_state = standard.boolean(attrs, "admin_state_up")
    if admin_state is not None:
        port.admin_state_up = admin_state
    opts = _list(attrs, "extra_dhcp_opts")
    if opts is not None:
        port.extra_dhcp_opts = _dhcp_opts(opts)


def _set_groups(session: Session, port_id: str, group_ids: list[str]) -> None:
    session.execute(delete(m.PortSecurityGroup).where(m.PortSecurityGroup.port_id == port_id))
    for group_id in group_ids:
        session.add(m.PortSecurityGroup(port_id=port_id, security_group_id=group_id))


def _auto_requests(session: Session, network: m.Network) -> list[tuple[m.Subnet, str | None]]:
    """Addresses a port gets without ``fixed_ips``, as Neutron: one from the network's IPv4
    subnets (the first with a free address), one from its stateful IPv6 subnets, and one on
    every SLAAC/DHCPv6-stateless subnet (derived from the MAC)."""
    subnets = _subnets(session, network.id)
    v4 = [s for s in subnets if s.ip_version == 4]
    v6_stateful = [s for s in subnets if s.ip_version == 6 and not ipam.is_auto_address(s)]
    auto = [s for s in subnets if ipam.is_auto_address(s)]
    chosen: list[tuple[m.Subnet, str | None]] = []
    for group in (v4, v6_stateful):
        if group:
            chosen.append((group[0], None))
    chosen.extend((s, "auto") for s in auto)
    return chosen


def _allocate_auto(
    session: Session, port: m.Port, network: m.Network, requests: list[tuple[m.Subnet, str | None]]
) -> None:
    subnets = _subnets(session, network.id)
    for subnet, ip in requests:
        if ip == "auto":
            ipam.allocate(
                session, subnet, port.id, network.id, ipam.eui64(subnet.cidr, port.mac_address)
            )
            continue
        # Any subnet of this IP version with a free address will do, the first one first.
        same = [
            s for s in subnets if s.ip_version == subnet.ip_version and not ipam.is_auto_address(s)
        ]
        for index, candidate in enumerate(same):
            try:
                ipam.allocate(session, candidate, port.id, network.id, None)
                break
            except Conflict:
                if index == len(same) - 1:
                    raise


def _allocate(
    session: Session,
    port: m.Port,
    network: m.Network,
    requests: list[tuple[m.Subnet, str | None]],
    handled: Iterable[str] = (),
) -> None:
    """Allocate the requested addresses, then the EUI-64 ones on auto-address subnets not
    ``handled`` already (an update that removed one does not get it back)."""
    gateway_ok = port.device_owner.startswith(ROUTER_INTERFACE) or port.device_owner.startswith(
        "network:router_gateway"
    )
    for subnet, ip in requests:
        if ip is None and ipam.is_auto_address(subnet):
            ip = ipam.eui64(subnet.cidr, port.mac_address)
        ipam.allocate(session, subnet, port.id, network.id, ip, allow_gateway=gateway_ok)
    if gateway_ok:
        return
    # As in Neutron, every SLAAC/DHCPv6-stateless subnet of the network gives the port its
    # EUI-64 address, whether or not fixed_ips named it.
    held = {f["subnet_id"] for f in fixed_ips_of(session, [port.id])[port.id]} | set(handled)
    for subnet in _subnets(session, network.id):
        if ipam.is_auto_address(subnet) and subnet.id not in held:
            ipam.allocate(
                session, subnet, port.id, network.id, ipam.eui64(subnet.cidr, port.mac_address)
            )


def _insert_port(session: Session, port: m.Port, mac_given: bool) -> None:
    """Insert the port; on a MAC clash retry with a new random MAC (or 409 for a MAC the
    user chose)."""
    for _ in range(MAC_ATTEMPTS):
        try:
            with session.begin_nested():
                session.add(port)
                session.flush()
            return
        except IntegrityError:
            if port in session:
                session.expunge(port)
            if mac_given:
                raise Conflict(
                    f"Unable to complete operation for network {port.network_id}. The mac "
                    f"address {port.mac_address} is in use.",
                    kind="MacAddressInUse",
                ) from None
            port.mac_address = random_mac()
    raise Conflict(
        f"Unable to generate a unique MAC address on network {port.network_id}.",
        kind="MacAddressGenerationFailure",
    )


# --- lifecycle -----------------------------------------------------------------------------


def create_port(session: Session, ctx: Context, attrs: dict[str, Any]) -> m.Port:
    """Create a port from Neutron request attributes (already checked for unknown names)."""
    project_id = owner_project(ctx, attrs)
    network_id = attrs.get("network_id")
    if not isinstance(network_id, str) or not network_id:
        raise BadRequest("Failed to parse request. Required attribute 'network_id' not specified")
    quotas.check_quota(session, project_id, "port")
    network = get_network(session, ctx, network_id)
    if not ctx.is_admin and not network.shared and network.project_id != project_id:
        raise Forbidden(f"Tenant {project_id} not allowed to create port on this network")
    if not ctx.is_admin and network.project_id != ctx.project_id:
        _check_shared_network_policy(attrs)
    port = m.Port(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id=project_id,
        status="DOWN",
        binding_vif_type="unbound",
        binding_vif_details={},
        binding_profile={},
        allowed_address_pairs=[],
        extra_dhcp_opts=[],
        revision_number=0,
    )
    _plain(port, attrs)
    port.device_owner = port.device_owner or ""
    port.device_id = port.device_id or ""
    _binding(port, attrs)
    security = standard.boolean(attrs, "port_security_enabled")
    port.port_security_enabled = network.port_security_enabled if security is None else security
    requested_groups = _list(attrs, "security_groups")
    if requested_groups is None:
        groups = (
            [default_group_id(session, project_id)]
            if port.port_security_enabled and not port.device_owner.startswith("network:")
            else []
        )
    else:
        groups = _security_groups(session, ctx, project_id, requested_groups)
        if groups and not port.port_security_enabled:
            raise BadRequest(
                "Port security must be enabled and port must have an IP address in order to "
                "use security groups.",
                kind="PortSecurityAndIPRequiredForSecurityGroups",
            )
    raw_fixed = _list(attrs, "fixed_ips")
    mac_given = attrs.get("mac_address") is not None
    port.mac_address = normalise_mac(attrs["mac_address"]) if mac_given else random_mac()
    pairs = _list(attrs, "allowed_address_pairs")
    if pairs and not port.port_security_enabled:
        raise Conflict(
            "Port Security must be enabled in order to have allowed address pairs on a port.",
            kind="AddressPairAndPortSecurityRequired",
        )
    _insert_port(session, port, mac_given)
    if pairs:  # after the insert: they name the MAC it settled on
        port.allowed_address_pairs = _address_pairs(pairs, port.mac_address)
    if raw_fixed is None:
        _allocate_auto(session, port, network, _auto_requests(session, network))
    else:
        _allocate(
            session,
            port,
            network,
            _fixed_ip_requests(session, network, raw_fixed, port.device_owner),
        )
    _set_groups(session, port.id, groups)
    session.flush()
    return port


def update_port(session: Session, ctx: Context, port_id: str, attrs: dict[str, Any]) -> m.Port:
    """Change a port (owner or admin): plain attributes, fixed IPs (the new list replaces
    the old: kept addresses stay, others are released), security groups, port security,
    address pairs, binding."""
    port = _owned_port(session, ctx, port_id)
    for key in ("network_id", "project_id", "tenant_id"):
        if key in attrs and attrs[key] != getattr(
            port, key if key != "tenant_id" else "project_id"
        ):
            raise BadRequest(f"Cannot update read-only attribute {key}")
    network = session.get(m.Network, port.network_id)
    assert network is not None
    _plain(port, attrs)
    _binding(port, attrs)
    if attrs.get("mac_address") is not None:
        mac = normalise_mac(attrs["mac_address"])
        if mac != port.mac_address:
            if port.binding_host_id and port.binding_vif_type not in ("unbound", "binding_failed"):
                raise Conflict(
                    f"Port {port.id} is bound: its MAC address cannot change.", kind="PortBound"
                )
            clash = session.scalar(
                select(m.Port.id).where(
                    m.Port.network_id == port.network_id, m.Port.mac_address == mac
                )
            )
            if clash:
                raise Conflict(
                    f"Unable to complete operation for network {port.network_id}. The mac "
                    f"address {mac} is in use.",
                    kind="MacAddressInUse",
                )
            port.mac_address = mac
    security = standard.boolean(attrs, "port_security_enabled")
    if security is not None:
        port.port_security_enabled = security
    current_groups = security_groups_of(session, [port.id])[port.id]
    requested_groups = _list(attrs, "security_groups")
    groups = (
        current_groups
        if requested_groups is None
        else _security_groups(session, ctx, port.project_id, requested_groups)
    )
    if not port.port_security_enabled and groups:
        if requested_groups is None:
            raise Conflict(
                f"Port {port.id} has security groups: remove them before disabling port security.",
                kind="PortSecurityPortHasSecurityGroup",
            )
        raise BadRequest(
            "Port security must be enabled and port must have an IP address in order to "
            "use security groups.",
            kind="PortSecurityAndIPRequiredForSecurityGroups",
        )
    if requested_groups is not None:
        _set_groups(session, port.id, groups)
    pairs = _list(attrs, "allowed_address_pairs")
    if pairs is not None:
        port.allowed_address_pairs = _address_pairs(pairs, port.mac_address)
    if port.allowed_address_pairs and not port.port_security_enabled:
        raise Conflict(
            "Port Security must be enabled in order to have allowed address pairs on a port.",
            kind="AddressPairAndPortSecurityRequired",
        )
    raw_fixed = _list(attrs, "fixed_ips")
    if raw_fixed is not None:
        _replace_fixed_ips(session, port, network, raw_fixed)
    standard.touch(port)
    session.flush()
    return port


def _replace_fixed_ips(session: Session, port: m.Port, network: m.Network, raw: list[Any]) -> None:
    current = fixed_ips_of(session, [port.id])[port.id]
    requests = _fixed_ip_requests(session, network, raw, port.device_owner)
    keep: set[tuple[str, str]] = set()
    fresh: list[tuple[m.Subnet, str | None]] = []
    held = {(f["subnet_id"], f["ip_address"]) for f in current}
    held_subnets = [f["subnet_id"] for f in current]
    for subnet, ip in requests:
        if ip is not None and (subnet.id, ip) in held:
            keep.add((subnet.id, ip))
        elif ip is None and subnet.id in held_subnets and not any(k[0] == subnet.id for k in keep):
            # {"subnet_id": X} alone keeps an address the port already has there.
            ours = next(
                f
                for f in current
                if f["subnet_id"] == subnet.id and (f["subnet_id"], f["ip_address"]) not in keep
            )
            keep.add((subnet.id, ours["ip_address"]))
        else:
            fresh.append((subnet, ip))
    for subnet_id, ip in held - keep:
        ipam.release_address(session, port.id, subnet_id, ip)
    session.flush()
    _allocate(session, port, network, fresh, handled=held_subnets)


def delete_port(session: Session, ctx: Context, port_id: str, force: bool = False) -> None:
    """Delete a port and free its addresses. Ports of routers and floating IPs belong to
    them (409, as Neutron) unless the router/floating IP code deletes them (``force``)."""
    port = _owned_port(session, ctx, port_id)
    if not force and port.device_owner.startswith(PROTECTED_OWNERS):
        raise Conflict(
            f"Port {port.id} cannot be deleted directly via the port API: has device owner "
            f"{port.device_owner}.",
            kind="ServicePortInUse",
        )
    remove(session, port)


def remove(session: Session, port: m.Port) -> None:
    """Delete a port row and what hangs on it (no checks: for internal callers)."""
    session.execute(
        update(m.FloatingIP)
        .where(m.FloatingIP.port_id == port.id)
        .values(port_id=None, fixed_ip_address=None, router_id=None, status="DOWN")
    )
    ipam.release(session, port.id)
    session.execute(delete(m.PortSecurityGroup).where(m.PortSecurityGroup.port_id == port.id))
    tags.drop_tags(session, RESOURCE, port.id)
    session.delete(port)
    session.flush()

"""A server's network interfaces: the ports Nova asks the network service for.

A create request names networks (a port is made for the server on each), existing ports
(plugged in as they are) or nothing: then, as Nova does, the one network the project may
use is picked, or none when there is none. The ports are made in the transaction that
writes the server, so a failed create leaves no port behind, and the server records
them in order (``instances.nics``, with whether the server made the port and so deletes
it with itself, or the user brought it and it only goes back to unbound). A port's
binding follows the server's host (``follow_host``), which is how the agent of that host
learns to plug it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.network import dhcp_ports
from kumo.core.network import networks as net_core
from kumo.core.network import ports as port_core
from kumo.core.network.default_group import DEFAULT_NAME as DEFAULT_GROUP_NAME
from kumo.core.network.default_group import default_group_id
from kumo.core.policy import Context
from kumo.db import models as m

COMPUTE_OWNER_PREFIX = "compute:"


@dataclass(frozen=True)
class RequestedNic:
    """One entry of a create request's ``networks``."""

    network_id: str | None = None
    port_id: str | None = None
    fixed_ip: str | None = None
    tag: str | None = None


def _usable_networks(session: Session, ctx: Context) -> list[m.Network]:
    """What Nova boots on when no network is named: the project's own networks, else the
    shared ones (never external ones). Both kinds in one query."""
    candidates = list(
        session.scalars(
            select(m.Network)
            .where(
                (m.Network.project_id == ctx.project_id) | m.Network.shared.is_(True),
                m.Network.external.is_(False),
            )
            .order_by(m.Network.created_at, m.Network.id)
        )
    )
    own = [n for n in candidates if n.project_id == ctx.project_id]
    return own or [n for n in candidates if n.shared]


def resolve(
    session: Session, ctx: Context, requested: list[RequestedNic] | None
) -> list[RequestedNic]:
    """Check what a create asks for before anything is written: networks exist and are
    usable (400), ports exist (404) and are free (409); None picks the network."""
    if requested is None:
        usable = _usable_networks(session, ctx)
        if len(usable) > 1:
            raise Conflict(
                "Multiple possible networks found, use a Network ID to be more specific."
            )
        return [RequestedNic(network_id=usable[0].id)] if usable else []
    for nic in requested:
        if nic.port_id is not None:
            try:
                port = port_core.get_port(session, ctx, nic.port_id)
            except NotFound:
                raise NotFound(f"Port {nic.port_id} could not be found.") from None
            if port.device_id:
                raise Conflict(f"Port {nic.port_id} is still in use.")
            continue
        assert nic.network_id is not None
        try:
            network = net_core.get_network(session, ctx, nic.network_id)
        except NotFound:
            raise BadRequest(f"Network {nic.network_id} could not be found.") from None
        if network.external and not network.shared and not ctx.is_admin:
            raise BadRequest(
                f"Network {network.id} is an external network: servers plug into "
                "tenant networks and reach it through a router and floating IPs."
            )
    return requested


def security_group_ids(
    session: Session, ctx: Context, wanted_groups: Iterable[str] | None
) -> list[str] | None:
    """A create request's security groups (names or ids) as group ids of the caller's
    project (None: the network service's default)."""
    if wanted_groups is None:
        return None
    ids: list[str] = []
    for wanted in dict.fromkeys(wanted_groups):
        if wanted == DEFAULT_GROUP_NAME:
            ids.append(default_group_id(session, str(ctx.project_id)))
            continue
        found = session.scalars(
            select(m.SecurityGroup.id).where(
                m.SecurityGroup.project_id == ctx.project_id,
                or_(m.SecurityGroup.name == wanted, m.SecurityGroup.id == wanted),
            )
        ).all()
        if len(found) != 1:
            raise BadRequest(f"Unable to find security_group with name or id '{wanted}'")
        ids.append(found[0])
    return ids


def plug_on_create(
    session: Session,
    ctx: Context,
    instance: m.Instance,
    nics: list[RequestedNic],
    groups: list[str] | None = None,
) -> None:
    """Make or claim the server's ports, in order, and add them to the server's NICs; ports
    it makes get ``groups`` (ids; None for the project's default group)."""
    recorded: list[dict[str, Any]] = []
    owner = COMPUTE_OWNER_PREFIX + (instance.availability_zone or "nova")
    for nic in nics:
        if nic.port_id is not None:
            port = port_core.get_port(session, ctx, nic.port_id)
            if port.device_id:
                raise Conflict(f"Port {nic.port_id} is still in use.")
            port.device_id = instance.id
            port.device_owner = owner
            port.revision_number += 1
            recorded.append({"port_id": port.id, "preserve": True, "tag": nic.tag})
            continue
        attrs: dict[str, Any] = {
            "network_id": nic.network_id,
            "device_id": instance.id,
            "device_owner": owner,
            "project_id": instance.project_id,
        }
        if nic.fixed_ip is not None:
            attrs["fixed_ips"] = [{"ip_address": nic.fixed_ip}]
        if groups is not None:
            attrs["security_groups"] = groups
        port = port_core.create_port(session, ctx, attrs)
        recorded.append({"port_id": port.id, "preserve": False, "tag": nic.tag})
    instance.nics = [*(instance.nics or ()), *recorded]


def port_ids(instance: m.Instance) -> list[str]:
    return [nic["port_id"] for nic in instance.nics or ()]


def follow_host(session: Session, instance: m.Instance) -> None:
    """The server has a (new) host, or none: its ports are bound there, the agent of that
    host plugs them (their status is DOWN until it reports them up), and DHCP for their
    networks is served there too."""
    ids = port_ids(instance)
    if not ids:
        return
    networks = set()
    for port in session.scalars(select(m.Port).where(m.Port.id.in_(ids))):
        port.binding_host_id = instance.host_id
        port.binding_vif_type = "tap" if instance.host_id else "unbound"
        port.status = "DOWN"
        port.revision_number += 1
        networks.add(port.network_id)
    session.flush()
    if instance.host_id:
        for network_id in sorted(networks):
            dhcp_ports.ensure(session, network_id, instance.host_id)
    dhcp_ports.prune(session, networks)


def _release(session: Session, instance: m.Instance, entries: list[dict[str, Any]]) -> None:
    """Free these NICs of the server: ports it made are deleted, a user's port is unbound
    and free for another server; DHCP ports left without guests go too."""
    networks = set()
    for nic in entries:
        port = session.get(m.Port, nic["port_id"])
        if port is None or port.device_id != instance.id:
            continue
        networks.add(port.network_id)
        if nic.get("preserve"):
            port.device_id = ""
            port.device_owner = ""
            port.binding_host_id = None
            port.binding_vif_type = "unbound"
            port.status = "DOWN"
            port.revision_number += 1
        else:
            port_core.remove(session, port)
    session.flush()
    dhcp_ports.prune(session, networks)


def unplug_on_delete(session: Session, instance: m.Instance) -> None:
    """The server is gone: all of its NICs are released."""
    _release(session, instance, list(instance.nics or ()))
    instance.nics = []


@dataclass(frozen=True)
class Address:
    instance_id: str
    network_name: str
    address: str
    mac: str
    kind: str  # fixed or floating


def addresses_of(session: Session, instances: Iterable[m.Instance]) -> dict[str, list[Address]]:
    """Every server's addresses in NIC order, in three queries whatever the count."""
    order: dict[str, tuple[str, int]] = {}
    for instance in instances:
        for index, port_id in enumerate(port_ids(instance)):
            order[port_id] = (instance.id, index)
    found: dict[str, list[Address]] = {}
    if not order:
        return found
    rows = session.execute(
        select(
            m.Port.id,
            m.Port.mac_address,
            m.Network.name,
            m.IPAllocation.ip_address,
        )
        .join(m.Network, m.Network.id == m.Port.network_id)
        .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
        .where(m.Port.id.in_(list(order)))
    ).all()
    floating = session.execute(
        select(
            m.FloatingIP.port_id, m.FloatingIP.fixed_ip_address, m.FloatingIP.floating_ip_address
        ).where(m.FloatingIP.port_id.in_(list(order)))
    ).all()
    float_by_fixed = {(p, fixed): fip for p, fixed, fip in floating}
    ranked = sorted(rows, key=lambda r: (order[r[0]][1], _ip_sort(r[3])))
    for port_id, mac, net_name, ip in ranked:
        instance_id = order[port_id][0]
        found.setdefault(instance_id, []).append(Address(instance_id, net_name, ip, mac, "fixed"))
        fip = float_by_fixed.get((port_id, ip))
        if fip is not None:
            found[instance_id].append(Address(instance_id, net_name, fip, mac, "floating"))
    return found


def _ip_sort(ip: str) -> tuple[int, int]:
    parsed = ipaddress.ip_address(ip)
    return (parsed.version, int(parsed))


def addresses_view(
    addresses: list[Address], extended: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Nova's ``addresses``: network name -> [{version, addr}], plus the address type and
    MAC (OS-EXT-IPS, OS-EXT-IPS-MAC) in show and detail; the core view (update, rebuild)
    and ``/ips`` have only the two."""
    view: dict[str, list[dict[str, Any]]] = {}
    for a in addresses:
        entry: dict[str, Any] = {
            "version": ipaddress.ip_address(a.address).version,
            "addr": a.address,
        }
        if extended:
            entry["OS-EXT-IPS:type"] = a.kind
            entry["OS-EXT-IPS-MAC:mac_addr"] = a.mac
        view.setdefault(a.network_name, []).append(entry)
    return view


def servers_with_ip(session: Session, pattern: str, version: int) -> set[str]:
    """Ids of servers with a fixed IP matching Nova's ``ip``/``ip6`` filter (a regular
    expression searched in the address, as Nova does)."""
    try:
        regex = re.compile(pattern)
    except re.error:
        raise BadRequest(f"Invalid regular expression for ip filter: {pattern}") from None
    rows = session.execute(
        select(m.Port.device_id, m.IPAllocation.ip_address)
        .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
        .where(
            or_(
                m.Port.device_owner.like(COMPUTE_OWNER_PREFIX + "%"),
                m.Port.device_owner == "",
            ),
            m.Port.device_id != "",
        )
    )
    return {
        device
        for device, ip in rows
        if ipaddress.ip_address(ip).version == version and regex.search(ip)
    }


def work_nics(session: Session, instances: Iterable[m.Instance]) -> dict[str, list[dict[str, Any]]]:
    """Each server's NICs as its agent needs them: to plug each port into its network and
    to write ``network_data.json`` on the config drive. Three queries however many servers
    (an agent's full resync asks for all of its host's at once)."""
    instances = list(instances)
    ids = [port_id for instance in instances for port_id in port_ids(instance)]
    if not ids:
        return {}
    ports = {p.id: p for p in session.scalars(select(m.Port).where(m.Port.id.in_(ids)))}
    networks = {
        n.id: n
        for n in session.scalars(
            select(m.Network).where(m.Network.id.in_({p.network_id for p in ports.values()}))
        )
    }
    allocations = session.execute(
        select(m.IPAllocation.port_id, m.IPAllocation.ip_address, m.Subnet)
        .join(m.Subnet, m.Subnet.id == m.IPAllocation.subnet_id)
        .where(m.IPAllocation.port_id.in_(ids))
    ).all()
    fixed: dict[str, list[dict[str, Any]]] = {}
    for port_id, ip, subnet in sorted(allocations, key=lambda r: _ip_sort(r[1])):
        fixed.setdefault(port_id, []).append(
            {
                "ip_address": ip,
                "subnet_id": subnet.id,
                "cidr": subnet.cidr,
                "gateway_ip": subnet.gateway_ip,
                "dns_nameservers": list(subnet.dns_nameservers or ()),
                "host_routes": list(subnet.host_routes or ()),
                "enable_dhcp": subnet.enable_dhcp,
            }
        )
    result: dict[str, list[dict[str, Any]]] = {}
    for instance in instances:
        views = []
        for nic in instance.nics or ():
            port = ports.get(nic["port_id"])
            if port is None:
                continue
            network = networks[port.network_id]
            views.append(
                {
                    "port_id": port.id,
                    "mac_address": port.mac_address,
                    "network_id": network.id,
                    "network_type": network.network_type,
                    "segmentation_id": network.segmentation_id,
                    "physical_network": network.physical_network,
                    "mtu": network.mtu,
                    "admin_state_up": port.admin_state_up,
                    "fixed_ips": fixed.get(port.id, []),
                    "tag": nic.get("tag"),
                }
            )
        if views:
            result[instance.id] = views
    return result


def security_group_names(session: Session, instances: Iterable[m.Instance]) -> dict[str, list[str]]:
    """The names of the groups on each server's ports (Nova's ``security_groups``)."""
    owner: dict[str, str] = {}
    for instance in instances:
        for port_id in port_ids(instance):
            owner[port_id] = instance.id
    found: dict[str, list[str]] = {}
    if not owner:
        return found
    rows = session.execute(
        select(m.PortSecurityGroup.port_id, m.SecurityGroup.name)
        .join(m.SecurityGroup, m.SecurityGroup.id == m.PortSecurityGroup.security_group_id)
        .where(m.PortSecurityGroup.port_id.in_(list(owner)))
    )
    for port_id, name in rows:
        names = found.setdefault(owner[port_id], [])
        if name not in names:
            names.append(name)
    return found


# Interfaces of a running server (os-interface, addFixedIp/removeFixedIp) ---------------


def _changed(instance: m.Instance) -> None:
    """The agent plugs or unplugs on its next look: the server's desired state moved."""
    instance.generation += 1


def attach(
    session: Session,
    ctx: Context,
    instance: m.Instance,
    network_id: str | None,
    port_id: str | None,
    fixed_ip: str | None,
) -> m.Port:
    """os-interface create: a new port on a network (or the caller's free port) plugged
    into the server, bound to its host."""
    if port_id is None and network_id is None:
        usable = resolve(session, ctx, None)
        if not usable:
            raise BadRequest("No network is available to attach an interface to.")
        network_id = usable[0].network_id
    nic = RequestedNic(network_id=network_id if not port_id else None, port_id=port_id,
                       fixed_ip=fixed_ip)  # fmt: skip
    resolve(session, ctx, [nic])
    plug_on_create(session, ctx, instance, [nic])
    follow_host(session, instance)
    _changed(instance)
    port = session.get(m.Port, port_ids(instance)[-1])
    assert port is not None
    return port


def detach(session: Session, ctx: Context, instance: m.Instance, port_id: str) -> None:
    entries = [nic for nic in instance.nics or () if nic["port_id"] == port_id]
    if not entries:
        raise NotFound(f"Port {port_id} is not attached")
    _release(session, instance, entries)
    instance.nics = [nic for nic in instance.nics or () if nic["port_id"] != port_id]
    _changed(instance)


def add_fixed_ip(session: Session, ctx: Context, instance: m.Instance, network_id: Any) -> None:
    """addFixedIp (<= 2.43): one more address, on the server's port on that network."""
    if not isinstance(network_id, str) or not network_id:
        raise BadRequest("Invalid input for field/attribute networkId.")
    for port_id in port_ids(instance):
        port = session.get(m.Port, port_id)
        if port is None or port.network_id != network_id:
            continue
        subnet = session.scalars(
            select(m.Subnet).where(m.Subnet.network_id == network_id, m.Subnet.ip_version == 4)
        ).first()
        if subnet is None:
            raise BadRequest(f"Network {network_id} has no IPv4 subnet to take an address from.")
        current = port_core.fixed_ips_of(session, [port.id])[port.id]
        port_core.update_port(
            session, ctx, port.id, {"fixed_ips": [*current, {"subnet_id": subnet.id}]}
        )
        _changed(instance)
        return
    raise BadRequest(f"Network {network_id} is not attached to the server.")


def remove_fixed_ip(session: Session, ctx: Context, instance: m.Instance, address: Any) -> None:
    if not isinstance(address, str) or not address:
        raise BadRequest("Invalid input for field/attribute address.")
    for port_id, fixed in port_core.fixed_ips_of(session, port_ids(instance)).items():
        if any(f["ip_address"] == address for f in fixed):
            keep = [f for f in fixed if f["ip_address"] != address]
            port_core.update_port(session, ctx, port_id, {"fixed_ips": keep})
            _changed(instance)
            return
    raise BadRequest(f"Unable to find address {address} on the server's ports.")


def interface_view(session: Session, port: m.Port) -> dict[str, Any]:
    return {
        "fixed_ips": port_core.fixed_ips_of(session, [port.id])[port.id],
        "mac_addr": port.mac_address,
        "net_id": port.network_id,
        "port_id": port.id,
        "port_state": port.status,
    }


def _group_by_name(session: Session, ctx: Context, name: Any) -> m.SecurityGroup:
    if not isinstance(name, str) or not name:
        raise BadRequest("Invalid input for field/attribute name.")
    if name == DEFAULT_GROUP_NAME and ctx.project_id:
        default_group_id(session, ctx.project_id)
    found = session.scalars(
        select(m.SecurityGroup).where(
            m.SecurityGroup.project_id == ctx.project_id,
            or_(m.SecurityGroup.name == name, m.SecurityGroup.id == name),
        )
    ).all()
    if not found:
        raise NotFound(f"Security group {name} not found for project {ctx.project_id}.")
    if len(found) > 1:
        raise Conflict(f"Multiple security groups found matching '{name}'. Use an ID.")
    return found[0]


def change_security_group(
    session: Session, ctx: Context, instance: m.Instance, name: Any, add: bool
) -> None:
    """addSecurityGroup/removeSecurityGroup: on (or off) every port of the server."""
    group = _group_by_name(session, ctx, name)
    ids = port_ids(instance)
    if not ids:
        raise BadRequest(f"Server {instance.id} has no network interface to secure.")
    present = set(
        session.scalars(
            select(m.PortSecurityGroup.port_id).where(
                m.PortSecurityGroup.port_id.in_(ids),
                m.PortSecurityGroup.security_group_id == group.id,
            )
        )
    )
    if not add and not present:
        raise BadRequest(f"Security group {group.name} not associated with the instance")
    for port_id in ids:
        port = session.get(m.Port, port_id)
        if port is None:
            continue
        if add and port_id not in present:
            if not port.port_security_enabled:
                raise BadRequest(
                    f"Port {port_id} has port security disabled: it takes no security group."
                )
            session.add(m.PortSecurityGroup(port_id=port_id, security_group_id=group.id))
        elif not add and port_id in present:
            session.execute(
                delete(m.PortSecurityGroup).where(
                    m.PortSecurityGroup.port_id == port_id,
                    m.PortSecurityGroup.security_group_id == group.id,
                )
            )
        port.revision_number += 1


def security_groups_of(session: Session, instance: m.Instance) -> list[m.SecurityGroup]:
    ids = port_ids(instance)
    if not ids:
        return []
    return list(
        session.scalars(
            select(m.SecurityGroup)
            .where(
                m.SecurityGroup.id.in_(
                    select(m.PortSecurityGroup.security_group_id).where(
                        m.PortSecurityGroup.port_id.in_(ids)
                    )
                )
            )
            .order_by(m.SecurityGroup.name)
        )
    )


# Scheduling: a port is never bound to a host that cannot carry its network ------------


def network_types_of(session: Session, instance: m.Instance) -> set[str]:
    """The provider types of the networks the server's ports are on."""
    ids = port_ids(instance)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(m.Network.network_type)
            .join(m.Port, m.Port.network_id == m.Network.id)
            .where(m.Port.id.in_(ids))
        )
    )


def types_missing_on(host: m.Host, types: set[str]) -> list[str]:
    """The network types a host cannot carry, by the capabilities its agent reported. A
    host that reports no network capabilities (an agent without a datapath) is not
    filtered: it boots guests without NICs, as it always has."""
    if not types:
        return []
    network = (host.capabilities or {}).get("network")
    if not isinstance(network, dict):
        return []
    carried = set(network.get("network_types") or ())
    return sorted(types - carried)


def type_reason(host: m.Host, network_type: str) -> str:
    network = (host.capabilities or {}).get("network") or {}
    reasons = network.get("reasons") or {}
    return str(reasons.get(network_type, ""))

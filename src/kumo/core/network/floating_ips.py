"""Floating IPs (Neutron's floatingip, fip-port-details): a public IPv4 address of an
external network, held by a port of its own on that network (device_owner
``network:floatingip``, owned by no project, as in Neutron), mapped 1:1 onto a fixed IPv4
address of a project's port through the router that connects the port's subnet to that
external network.

Only admins pick the floating address itself (Neutron's default policy). Deleting the
associated port disassociates (kumo.core.network.ports.remove does it).

Status, as Neutron's: DOWN when not associated (at once when disassociated), and an
association stays DOWN until the agent of the host carrying its router reports the
address and its NAT applied (record_status), then ACTIVE.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.network import ports, quotas, standard, tags
from kumo.core.network.networks import get_network
from kumo.core.network.router_ports import (
    FLOATING_OWNER,
    GATEWAY_OWNER,
    INTERFACE_OWNER,
    elevated,
)
from kumo.core.network.scope import owner_project
from kumo.core.policy import Context
from kumo.db import models as m

TAG_TYPE = "floatingips"
CREATE_ATTRS = frozenset(
    {
        "floating_network_id",
        "floating_ip_address",
        "subnet_id",
        "port_id",
        "fixed_ip_address",
        "description",
        "tags",
        "project_id",
        "tenant_id",
    }
)
UPDATE_ATTRS = frozenset({"port_id", "fixed_ip_address", "description"})
# Ports a floating IP cannot point at: the network's own plumbing.
NOT_ASSOCIABLE = (INTERFACE_OWNER, GATEWAY_OWNER, FLOATING_OWNER, "network:dhcp")


def not_found(fip_id: str) -> NotFound:
    return NotFound(f"Floating IP {fip_id} could not be found", kind="FloatingIPNotFound")


def get_floating_ip(session: Session, ctx: Context, fip_id: str) -> m.FloatingIP:
    fip = session.get(m.FloatingIP, fip_id) if isinstance(fip_id, str) else None
    if fip is None or not (ctx.is_admin or fip.project_id == ctx.project_id):
        raise not_found(str(fip_id))
    return fip


def list_floating_ips(session: Session, ctx: Context) -> list[m.FloatingIP]:
    query = select(m.FloatingIP).order_by(m.FloatingIP.created_at, m.FloatingIP.id)
    if not ctx.is_admin:
        query = query.where(m.FloatingIP.project_id == (ctx.project_id or ""))
    return list(session.scalars(query))


def _v4_subnets(session: Session, network_id: str) -> list[m.Subnet]:
    return list(
        session.scalars(
            select(m.Subnet)
            .where(m.Subnet.network_id == network_id, m.Subnet.ip_version == 4)
            .order_by(m.Subnet.created_at, m.Subnet.id)
        )
    )


def _floating_port(
    session: Session,
    ctx: Context,
    network: m.Network,
    fip_id: str,
    project_id: str,
    address: str | None,
    subnet_id: str | None,
) -> tuple[m.Port, str]:
    """The port holding the floating address, and the address (IPv4)."""
    base: dict[str, Any] = {
        "network_id": network.id,
        "project_id": project_id,
        "device_owner": FLOATING_OWNER,
        "device_id": fip_id,
        "name": "",
    }
    subnets = _v4_subnets(session, network.id)
    if subnet_id is not None and subnet_id not in {s.id for s in subnets}:
        raise BadRequest(
            f"Bad floatingip request: Subnet {subnet_id} is not an IPv4 subnet of network "
            f"{network.id}."
        )
    if not subnets:
        raise BadRequest(
            f"Bad floatingip request: Network {network.id} does not contain any IPv4 subnet."
        )
    if address is not None or subnet_id is not None:
        wanted: dict[str, Any] = {}
        if address is not None:
            wanted["ip_address"] = address
        if subnet_id is not None:
            wanted["subnet_id"] = subnet_id
        attempts = [[wanted]]
    else:
        attempts = [[{"subnet_id": s.id}] for s in subnets]
    for index, fixed in enumerate(attempts):
        try:
            with session.begin_nested():
                port = ports.create_port(session, elevated(ctx), {**base, "fixed_ips": fixed})
        except Conflict as exc:
            # A full subnet: the next IPv4 subnet of the network may have room.
            if exc.kind != "IpAddressGenerationFailure" or index == len(attempts) - 1:
                raise
            continue
        break
    v4 = [
        ip["ip_address"]
        for ip in ports.fixed_ips_of(session, [port.id])[port.id]
        if ipaddress.ip_address(ip["ip_address"]).version == 4
    ]
    if not v4:
        raise BadRequest(
            f"Bad floatingip request: {address} is not an IPv4 address of network {network.id}."
        )
    port.project_id = ""
    port.status = "N/A"
    return port, v4[0]


def create_floating_ip(session: Session, ctx: Context, attrs: dict[str, Any]) -> m.FloatingIP:
    project_id = owner_project(ctx, attrs)
    quotas.check_quota(session, project_id, "floatingip")
    network_id = attrs.get("floating_network_id")
    if not isinstance(network_id, str) or not network_id:
        raise BadRequest(
            "Failed to parse request. Required attribute 'floating_network_id' not specified"
        )
    network = get_network(session, ctx, network_id)
    if not network.external:
        raise BadRequest(
            f"Bad floatingip request: Network {network.id} is not a valid external network: "
            "use a network with router:external true."
        )
    address = attrs.get("floating_ip_address")
    if address is not None:
        if not ctx.is_admin:
            raise Forbidden(
                "(rule:create_floatingip and rule:create_floatingip:floating_ip_address) is "
                "disallowed by policy: only an admin may choose the floating address.",
                kind="PolicyNotAuthorized",
            )
        if not isinstance(address, str):
            raise BadRequest(
                f"Invalid input for floating_ip_address. Reason: '{address}' is not a valid "
                "IP address."
            )
    subnet_id = attrs.get("subnet_id")
    if subnet_id is not None and not isinstance(subnet_id, str):
        raise BadRequest(f"Invalid input for subnet_id. Reason: '{subnet_id}' is not a valid UUID.")
    if attrs.get("fixed_ip_address") is not None and attrs.get("port_id") is None:
        raise BadRequest(
            "Bad floatingip request: fixed_ip_address cannot be specified without a port_id."
        )
    fip_id = str(uuid.uuid4())
    port, floating_address = _floating_port(
        session, ctx, network, fip_id, project_id, address, subnet_id
    )
    fip = m.FloatingIP(
        id=fip_id,
        project_id=project_id,
        floating_network_id=network.id,
        floating_port_id=port.id,
        floating_ip_address=floating_address,
        status="DOWN",
        description=standard.text(attrs, "description", standard.MAX_DESCRIPTION) or "",
        revision_number=0,
    )
    wanted_tags = standard.string_list(attrs, "tags")
    session.add(fip)
    session.flush()
    if attrs.get("port_id") is not None:
        _associate(session, ctx, fip, attrs["port_id"], attrs.get("fixed_ip_address"))
    if wanted_tags:
        tags.replace_tags(session, TAG_TYPE, fip.id, wanted_tags)
    session.flush()
    return fip


def _fixed_address(port: m.Port, fixed: list[dict[str, str]], wanted: Any) -> dict[str, str]:
    """Which of the port's fixed IPs the floating IP maps to."""
    if wanted is not None:
        match = [ip for ip in fixed if ip["ip_address"] == wanted]
        if not match:
            raise BadRequest(
                f"Bad floatingip request: Port {port.id} does not have fixed ip {wanted}."
            )
        if ipaddress.ip_address(wanted).version != 4:
            raise BadRequest(
                f"Bad floatingip request: Cannot process floating IP association with {wanted}, "
                "since that is not an IPv4 address."
            )
        return match[0]
    v4 = [ip for ip in fixed if ipaddress.ip_address(ip["ip_address"]).version == 4]
    if not v4:
        raise BadRequest(
            f"Bad floatingip request: Cannot add floating IP to port {port.id} that has no "
            "fixed IPv4 addresses."
        )
    if len(v4) > 1:
        raise BadRequest(
            f"Bad floatingip request: Port {port.id} has multiple fixed IPv4 addresses. Must "
            "provide a specific IPv4 address when assigning a floating IP."
        )
    return v4[0]


def _router_for(session: Session, fip: m.FloatingIP, subnet_id: str) -> m.Router | None:
    """A router with its gateway on the floating network and an interface on the subnet."""
    on_subnet = (
        select(m.Port.device_id)
        .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
        .where(m.Port.device_owner == INTERFACE_OWNER, m.IPAllocation.subnet_id == subnet_id)
    )
    return session.scalars(
        select(m.Router)
        .where(
            m.Router.external_network_id == fip.floating_network_id,
            m.Router.id.in_(on_subnet),
        )
        .order_by(m.Router.created_at, m.Router.id)
    ).first()


def _associate(
    session: Session, ctx: Context, fip: m.FloatingIP, port_id: Any, wanted: Any
) -> None:
    if not isinstance(port_id, str):
        raise BadRequest(f"Invalid input for port_id. Reason: '{port_id}' is not a valid UUID.")
    port = ports.get_port(session, ctx, port_id)
    if port.project_id != fip.project_id and not ctx.is_admin:
        raise BadRequest(
            f"Bad floatingip request: Cannot process floating IP association with Port "
            f"{port.id}, since that port is owned by a different project."
        )
    if port.device_owner.startswith(NOT_ASSOCIABLE):
        raise BadRequest(
            f"Bad floatingip request: Port {port.id} has owner {port.device_owner} and "
            "therefore cannot be assigned a floating IP."
        )
    fixed = _fixed_address(port, ports.fixed_ips_of(session, [port.id])[port.id], wanted)
    router = _router_for(session, fip, fixed["subnet_id"])
    if router is None:
        raise NotFound(
            f"External network {fip.floating_network_id} is not reachable from subnet "
            f"{fixed['subnet_id']}. Therefore, cannot associate Port {port.id} with a "
            "Floating IP: connect the subnet to a router whose gateway is on that network.",
            kind="ExternalGatewayForFloatingIPNotFound",
        )
    taken = session.scalar(
        select(
            exists().where(
                m.FloatingIP.id != fip.id,
                m.FloatingIP.port_id == port.id,
                m.FloatingIP.fixed_ip_address == fixed["ip_address"],
                m.FloatingIP.floating_network_id == fip.floating_network_id,
            )
        )
    )
    already = Conflict(
        f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
        f"{port.id} using fixed IP {fixed['ip_address']}, as that fixed IP already has a "
        f"floating IP on external network {fip.floating_network_id}.",
        kind="FloatingIPPortAlreadyAssociated",
    )
    if taken:
        raise already
    mapping = (port.id, fixed["ip_address"], router.id)
    try:
        # The unique index settles a race the check above cannot see.
        with session.begin_nested():
            if (fip.port_id, fip.fixed_ip_address, fip.router_id) != mapping:
                # DOWN until the agent of the host carrying the router reports the address
                # and its NAT applied (record_status), as Neutron's L3 agent does.
                fip.status = "DOWN"
            fip.port_id, fip.fixed_ip_address, fip.router_id = mapping
            session.flush()
    except IntegrityError:
        raise already from None


def _disassociate(fip: m.FloatingIP) -> None:
    fip.port_id = None
    fip.fixed_ip_address = None
    fip.router_id = None
    fip.status = "DOWN"


def record_status(session: Session, host_id: str, statuses: dict[str, str] | None) -> int:
    """Apply what a host's agent observed of floating IPs (kumo.protocol.NetworkStatus):
    only to those associated through a router this host carries (another host cannot
    change them, and a floating IP disassociated or moved meanwhile keeps the status the
    API gave it). None, from an agent older than floating IP statuses, changes nothing.
    Returns how many changed."""
    if not statuses:
        return 0
    carried = select(m.Router.id).where(m.Router.host_id == host_id)
    changed = 0
    for fip in session.scalars(
        select(m.FloatingIP).where(
            m.FloatingIP.id.in_(list(statuses)),
            m.FloatingIP.port_id.is_not(None),
            m.FloatingIP.router_id.in_(carried),
        )
    ):
        if fip.status != statuses[fip.id]:
            fip.status = statuses[fip.id]
            standard.touch(fip)
            changed += 1
    return changed


def update_floating_ip(
    session: Session,
    ctx: Context,
    fip_id: str,
    attrs: dict[str, Any],
) -> m.FloatingIP:
    fip = get_floating_ip(session, ctx, fip_id)
    if "port_id" in attrs:
        if attrs["port_id"] is None:
            _disassociate(fip)
        else:
            _associate(session, ctx, fip, attrs["port_id"], attrs.get("fixed_ip_address"))
    elif attrs.get("fixed_ip_address") is not None:
        if fip.port_id is None:
            raise BadRequest(
                "Bad floatingip request: fixed_ip_address cannot be specified without a port_id."
            )
        _associate(session, ctx, fip, fip.port_id, attrs["fixed_ip_address"])
    description = standard.text(attrs, "description", standard.MAX_DESCRIPTION)
    if description is not None:
        fip.description = description
    standard.touch(fip)
    session.flush()
    return fip


def delete_floating_ip(session: Session, ctx: Context, fip_id: str) -> None:
    fip = get_floating_ip(session, ctx, fip_id)
    port = session.get(m.Port, fip.floating_port_id)
    tags.drop_tags(session, TAG_TYPE, fip.id)
    session.delete(fip)
    session.flush()
    if port is not None:
        ports.remove(session, port)


def delete_on_network(session: Session, network_id: str) -> None:
    """Delete the floating IPs of an external network that is being deleted (with the
    ports holding their addresses)."""
    for fip in session.scalars(
        select(m.FloatingIP).where(m.FloatingIP.floating_network_id == network_id)
    ):
        port = session.get(m.Port, fip.floating_port_id)
        tags.drop_tags(session, TAG_TYPE, fip.id)
        session.delete(fip)
        session.flush()
        if port is not None:
            ports.remove(session, port)


def port_details(session: Session, fips: list[m.FloatingIP]) -> dict[str, dict[str, Any] | None]:
    """fip-port-details: a summary of each floating IP's associated port."""
    ids = [f.port_id for f in fips if f.port_id]
    found = (
        {p.id: p for p in session.scalars(select(m.Port).where(m.Port.id.in_(ids)))} if ids else {}
    )
    details: dict[str, dict[str, Any] | None] = {}
    for fip in fips:
        port = found.get(fip.port_id or "")
        details[fip.id] = (
            None
            if port is None
            else {
                "name": port.name,
                "network_id": port.network_id,
                "mac_address": port.mac_address,
                "admin_state_up": port.admin_state_up,
                "status": port.status,
                "device_id": port.device_id,
                "device_owner": port.device_owner,
            }
        )
    return details

"""Router interfaces (Neutron's add_router_interface / remove_router_interface).

By subnet: a new port takes the subnet's gateway address (the subnet must have one; 409 if
another port holds it). By port: an unattached port of the caller's with one IPv4 address
becomes the interface. A router has at most one interface per subnet, and its interface
subnets may not overlap. An interface that a floating IP or a static route needs stays.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.network import ipam, ports, standard
from kumo.core.network import subnets as subnets_core
from kumo.core.network.router_ports import (
    GATEWAY_OWNER,
    INTERFACE_OWNER,
    NEW_PORT_STATUS,
    elevated,
    interface_ports,
    routes_via,
)
from kumo.core.network.scope import owns
from kumo.core.policy import Context
from kumo.db import models as m


def _subnets_of(session: Session, port: m.Port) -> list[m.Subnet]:
    fixed = ports.fixed_ips_of(session, [port.id])[port.id]
    found = []
    for ip in fixed:
        subnet = session.get(m.Subnet, ip["subnet_id"])
        if subnet is not None and subnet not in found:
            found.append(subnet)
    return found


def _check_new_subnets(session: Session, router: m.Router, new: list[m.Subnet]) -> None:
    """One port per subnet on a router, and no two interface subnets overlapping."""
    new_ids = {s.id for s in new}
    router_ports = session.scalars(select(m.Port).where(m.Port.device_id == router.id))
    interface_subnets: list[m.Subnet] = []
    for port in router_ports:
        for subnet in _subnets_of(session, port):
            if subnet.id in new_ids:
                raise BadRequest(
                    f"Bad router request: Router already has a port on subnet {subnet.id}."
                )
            if port.device_owner != GATEWAY_OWNER:
                interface_subnets.append(subnet)
    for existing in interface_subnets:
        for subnet in new:
            if ipaddress.ip_network(existing.cidr).overlaps(ipaddress.ip_network(subnet.cidr)):
                raise BadRequest(
                    f"Bad router request: Cidr {subnet.cidr} of subnet {subnet.id} overlaps "
                    f"with cidr {existing.cidr} of subnet {existing.id}."
                )


def _info(router: m.Router, port: m.Port, subnets: list[m.Subnet]) -> dict[str, Any]:
    """The answer to add/remove_router_interface."""
    return {
        "id": router.id,
        "tenant_id": router.project_id,
        "project_id": router.project_id,
        "port_id": port.id,
        "subnet_id": subnets[0].id if subnets else None,
        "subnet_ids": [s.id for s in subnets],
        "network_id": port.network_id,
    }


def _ipv6_port_on(session: Session, router: m.Router, network_id: str) -> m.Port | None:
    """The router's interface on the network that already has IPv6 addresses, if any."""
    for port in interface_ports(session, router.id):
        if port.network_id == network_id and any(
            s.ip_version == 6 for s in _subnets_of(session, port)
        ):
            return port
    return None


def _by_subnet(
    session: Session, ctx: Context, router: m.Router, subnet_id: str
) -> tuple[m.Port, list[m.Subnet]]:
    subnet = subnets_core.get_subnet(session, ctx, subnet_id)
    if not owns(ctx, subnet.project_id):
        raise BadRequest(
            f"Bad router request: Cannot add interface to router because subnet {subnet.id} "
            "is not owned by project making the request."
        )
    if not subnet.gateway_ip:
        raise BadRequest(
            "Bad router request: Subnet for router interface must have a gateway IP: set "
            "the subnet's gateway_ip, or attach a port of the subnet instead."
        )
    _check_new_subnets(session, router, [subnet])
    wanted = {"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}
    if subnet.ip_version == 6:
        # As Neutron: a router has one port per network for its IPv6 subnets, each new
        # prefix an address more on it.
        shared = _ipv6_port_on(session, router, subnet.network_id)
        if shared is not None:
            held = ports.fixed_ips_of(session, [shared.id])[shared.id]
            ports.update_port(session, elevated(ctx), shared.id, {"fixed_ips": [*held, wanted]})
            return shared, [subnet]
    port = ports.create_port(
        session,
        elevated(ctx),
        {
            "network_id": subnet.network_id,
            "project_id": router.project_id,
            "fixed_ips": [wanted],
            "device_owner": INTERFACE_OWNER,
            "device_id": router.id,
            "name": "",
        },
    )
    return port, [subnet]


def _by_port(
    session: Session, ctx: Context, router: m.Router, port_id: str
) -> tuple[m.Port, list[m.Subnet]]:
    port = ports.get_port(session, ctx, port_id)
    if not owns(ctx, port.project_id):
        raise ports.not_found(port_id)
    if port.device_id:
        raise Conflict(
            f"Unable to complete operation on port {port.id} for network {port.network_id}. "
            f"Port already has an attached device {port.device_id}.",
            kind="PortInUse",
        )
    subnets = _subnets_of(session, port)
    if not subnets:
        raise BadRequest("Bad router request: Router port must have at least one fixed IP.")
    fixed = ports.fixed_ips_of(session, [port.id])[port.id]
    if len([ip for ip in fixed if ipaddress.ip_address(ip["ip_address"]).version == 4]) > 1:
        raise BadRequest(
            "Bad router request: Cannot have multiple IPv4 subnets on router port: a router "
            "interface has one IPv4 address."
        )
    _check_new_subnets(session, router, subnets)
    # Claim the port only if it is still unattached: of two routers racing for one port,
    # one gets it and the other a 409.
    claimed = session.execute(
        update(m.Port)
        .where(m.Port.id == port.id, m.Port.device_id == "")
        .values(device_id=router.id, device_owner=INTERFACE_OWNER)
        .execution_options(synchronize_session="fetch")
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise Conflict(
            f"Unable to complete operation on port {port.id} for network {port.network_id}. "
            "Port already has an attached device.",
            kind="PortInUse",
        )
    standard.touch(port)
    return port, subnets


def add_interface(
    session: Session, ctx: Context, router: m.Router, subnet_id: str | None, port_id: str | None
) -> dict[str, Any]:
    """Attach the subnet (a new port on it) or the existing port; the API checked that the
    body names at least one of them."""
    if subnet_id and port_id:
        raise BadRequest("Bad router request: Cannot specify both subnet-id and port-id.")
    if port_id:
        port, subnets = _by_port(session, ctx, router, port_id)
    else:
        assert subnet_id is not None
        port, subnets = _by_subnet(session, ctx, router, subnet_id)
    port.status = NEW_PORT_STATUS
    standard.touch(router)
    session.flush()
    return _info(router, port, subnets)


def _check_unused(session: Session, router: m.Router, subnets: list[m.Subnet]) -> None:
    fips = session.scalars(select(m.FloatingIP).where(m.FloatingIP.router_id == router.id))
    fixed = [ipaddress.ip_address(f.fixed_ip_address) for f in fips if f.fixed_ip_address]
    for subnet in subnets:
        network = ipaddress.ip_network(subnet.cidr)
        if any(ip in network for ip in fixed):
            raise Conflict(
                f"Router interface for subnet {subnet.id} on router {router.id} cannot be "
                "deleted, as it is required by one or more floating IPs: disassociate them "
                "first.",
                kind="RouterInterfaceInUseByFloatingIP",
            )
        if routes_via(router.routes or [], subnet.cidr):
            raise Conflict(
                f"Router interface for subnet {subnet.id} on router {router.id} cannot be "
                "deleted, as it is required by one or more routes: remove them first.",
                kind="RouterInterfaceInUseByRoute",
            )


def remove_interface(
    session: Session, ctx: Context, router: m.Router, subnet_id: str | None, port_id: str | None
) -> dict[str, Any]:
    subnet = subnets_core.get_subnet(session, ctx, subnet_id) if subnet_id else None
    if port_id:
        port = session.get(m.Port, port_id)
        if port is None or port.device_id != router.id or port.device_owner != INTERFACE_OWNER:
            raise NotFound(
                f"Router {router.id} does not have an interface with id {port_id}",
                kind="RouterInterfaceNotFound",
            )
        subnets = _subnets_of(session, port)
        if subnet is not None and subnet.id not in {s.id for s in subnets}:
            raise BadRequest(
                f"Subnet {subnet.id} does not match with the subnets of port {port.id}.",
                kind="SubnetMismatchForPort",
            )
    else:
        assert subnet is not None
        found = [
            p
            for p in interface_ports(session, router.id)
            if subnet.id in {s.id for s in _subnets_of(session, p)}
        ]
        if not found:
            raise NotFound(
                f"Router {router.id} has no interface on subnet {subnet.id}",
                kind="RouterInterfaceNotFoundForSubnet",
            )
        port = found[0]
        subnets = _subnets_of(session, port)
    removing = [subnet] if subnet is not None and not port_id else subnets
    _check_unused(session, router, removing)
    info = _info(router, port, removing)
    if len(subnets) > len(removing):
        # The port keeps its other subnets (IPv6 prefixes sharing one port).
        for s in removing:
            ipam.release(session, port.id, s.id)
        standard.touch(port)
    else:
        ports.remove(session, port)
    standard.touch(router)
    session.flush()
    return info

"""Routers (Neutron's router, ext-gw-mode and extraroute): CRUD, the host that carries a
router, and static routes. The external gateway lives in router_gateway, interfaces in
router_interfaces.

A router is a project's; members change their own, admins any. Each router is carried by
one host's agent (``host_id``): the enabled, alive host with the fewest routers when it is
created, or none when no host is up (it is placed once one registers).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core import hosts
from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.network import quotas, router_gateway, standard, tags
from kumo.core.network.ports import fixed_ips_of
from kumo.core.network.router_ports import interface_ports
from kumo.core.network.scope import owner_project
from kumo.core.policy import Context
from kumo.db import models as m

TAG_TYPE = "routers"
MAX_ROUTES = 30
CREATE_ATTRS = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "external_gateway_info",
        "availability_zone_hints",
        "distributed",
        "ha",
        "flavor_id",
        "tags",
        "project_id",
        "tenant_id",
    }
)
UPDATE_ATTRS = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "external_gateway_info",
        "routes",
        "distributed",
        "ha",
    }
)


def not_found(router_id: str) -> NotFound:
    return NotFound(f"Router {router_id} could not be found", kind="RouterNotFound")


def get_router(session: Session, ctx: Context, router_id: str) -> m.Router:
    router = session.get(m.Router, router_id) if isinstance(router_id, str) else None
    if router is None or not (ctx.is_admin or router.project_id == ctx.project_id):
        raise not_found(str(router_id))
    return router


def list_routers(session: Session, ctx: Context) -> list[m.Router]:
    query = select(m.Router).order_by(m.Router.created_at, m.Router.id)
    if not ctx.is_admin:
        query = query.where(m.Router.project_id == (ctx.project_id or ""))
    return list(session.scalars(query))


def pick_host(session: Session, heartbeat_timeout: float) -> str | None:
    """The host to carry a new router: among enabled hosts with a fresh heartbeat, the one
    carrying the fewest routers (ties: by name, so the choice is stable)."""
    up = [s.host for s in hosts.list_hosts(session, heartbeat_timeout) if s.up and s.host.enabled]
    if not up:
        return None
    counts = dict(
        session.execute(
            select(m.Router.host_id, func.count())
            .where(m.Router.host_id.in_([h.id for h in up]))
            .group_by(m.Router.host_id)
        ).all()
    )
    return min(up, key=lambda h: (counts.get(h.id, 0), h.name)).id


def place_unhosted(session: Session, heartbeat_timeout: float) -> int:
    """Give a host to routers made while none was up (the all-in-one cloud's first router
    is made before its agent registers). Returns how many were placed."""
    placed = 0
    for router in session.scalars(select(m.Router).where(m.Router.host_id.is_(None))):
        host_id = pick_host(session, heartbeat_timeout)
        if host_id is None:
            break
        router.host_id = host_id
        placed += 1
        session.flush()
    return placed


def reschedule_from_dead_hosts(session: Session, heartbeat_timeout: float) -> list[str]:
    """Move routers off hosts that are gone (forced down, or silent for twice the
    heartbeat timeout, so an agent restart does not move them) to the least loaded host
    that is up, as Neutron's automatic L3 failover does. The new host's agent builds the
    router from its desired state; the old one, if it returns, removes its copy (it is no
    longer in its state). A disabled host keeps its routers: disabling stops new
    placements only. Returns a line per move, for the log."""
    carrying = select(m.Router.host_id).where(m.Router.host_id.is_not(None))
    dead = {
        h.id: h.name
        for h in session.scalars(select(m.Host).where(m.Host.id.in_(carrying)))
        if not hosts.status_of(h, 2 * heartbeat_timeout).up
    }
    moves: list[str] = []
    if not dead:
        return moves
    for router in session.scalars(select(m.Router).where(m.Router.host_id.in_(dead))):
        target = pick_host(session, heartbeat_timeout)
        if target is None:
            break  # nowhere to go: it stays until a host is up again
        old = dead[str(router.host_id)]
        moves.append(f"router {router.id} moved from dead host {old} to host {target}")
        router.host_id = target
        session.flush()
    return moves


def _check_flags(attrs: dict[str, Any]) -> None:
    for key in ("distributed", "ha"):
        if standard.boolean(attrs, key):
            raise BadRequest(
                f"Invalid input for {key}: this cloud's routers are centralized and not HA; "
                f"omit {key} or set it to false."
            )
    if attrs.get("flavor_id") is not None:
        raise BadRequest("Router flavors are not supported: omit flavor_id.")


def _zone_hints(attrs: dict[str, Any]) -> list[str]:
    hints = standard.string_list(attrs, "availability_zone_hints")
    for hint in hints:
        if not hint or len(hint) > 255:
            raise BadRequest(f"Invalid input for availability_zone_hints: '{hint}'.")
    return hints


def create_router(
    session: Session, ctx: Context, attrs: dict[str, Any], heartbeat_timeout: float
) -> m.Router:
    project_id = owner_project(ctx, attrs)
    quotas.check_quota(session, project_id, "router")
    _check_flags(attrs)
    admin_up = standard.boolean(attrs, "admin_state_up")
    router = m.Router(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=standard.text(attrs, "name") or "",
        description=standard.text(attrs, "description", standard.MAX_DESCRIPTION) or "",
        admin_state_up=True if admin_up is None else admin_up,
        status="ACTIVE",
        enable_snat=True,
        routes=[],
        availability_zone_hints=_zone_hints(attrs),
        host_id=pick_host(session, heartbeat_timeout),
        revision_number=0,
    )
    wanted_tags = standard.string_list(attrs, "tags")
    session.add(router)
    session.flush()
    info = attrs.get("external_gateway_info")
    if info:
        router_gateway.set_gateway(session, ctx, router, info, "create")
    if wanted_tags:
        tags.replace_tags(session, TAG_TYPE, router.id, wanted_tags)
    return router


def update_router(
    session: Session,
    ctx: Context,
    router_id: str,
    attrs: dict[str, Any],
) -> m.Router:
    router = get_router(session, ctx, router_id)
    _check_flags(attrs)
    name = standard.text(attrs, "name")
    if name is not None:
        router.name = name
    description = standard.text(attrs, "description", standard.MAX_DESCRIPTION)
    if description is not None:
        router.description = description
    admin_up = standard.boolean(attrs, "admin_state_up")
    if admin_up is not None:
        router.admin_state_up = admin_up
    if "external_gateway_info" in attrs:
        router_gateway.set_gateway(session, ctx, router, attrs["external_gateway_info"], "update")
    if "routes" in attrs:
        router.routes = check_routes(session, router, attrs["routes"])
    standard.touch(router)
    session.flush()
    return router


def delete_router(session: Session, ctx: Context, router_id: str) -> None:
    router = get_router(session, ctx, router_id)
    if interface_ports(session, router.id):
        raise Conflict(
            f"Router {router.id} still has ports: remove its interfaces "
            "(remove_router_interface) before deleting it.",
            kind="RouterInUse",
        )
    router_gateway.clear_gateway(session, router)
    tags.drop_tags(session, TAG_TYPE, router.id)
    session.delete(router)
    session.flush()


# --- routes (extraroute) ------------------------------------------------------------------


def router_addresses(session: Session, router: m.Router) -> list[tuple[str, str]]:
    """(subnet CIDR, address) of every port of the router, gateway included."""
    port_ids = list(session.scalars(select(m.Port.id).where(m.Port.device_id == router.id)))
    found = []
    fixed = fixed_ips_of(session, port_ids)
    subnet_ids = {ip["subnet_id"] for ips in fixed.values() for ip in ips}
    cidrs: dict[str, str] = {
        subnet_id: cidr
        for subnet_id, cidr in session.execute(
            select(m.Subnet.id, m.Subnet.cidr).where(m.Subnet.id.in_(subnet_ids))
        )
    }
    for ips in fixed.values():
        for ip in ips:
            found.append((cidrs[ip["subnet_id"]], ip["ip_address"]))
    return found


def check_routes(session: Session, router: m.Router, raw: Any) -> list[dict[str, str]]:
    """Neutron's extraroute checks: each route a destination CIDR and a nexthop on one of
    the router's subnets (not the router's own address), at most 30."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid input for routes. Reason: '{raw}' is not a list.")
    if len(raw) > MAX_ROUTES:
        raise BadRequest(
            f"Unable to complete operation for {router.id}. The number of routes exceeds "
            f"the maximum {MAX_ROUTES}.",
            kind="RoutesExhausted",
        )
    addresses = router_addresses(session, router)
    routes: list[dict[str, str]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"destination", "nexthop"}:
            raise BadRequest(
                f"Invalid input for routes. Reason: '{item}' must be an object with "
                "destination and nexthop."
            )
        destination, nexthop = item["destination"], item["nexthop"]
        try:
            network = ipaddress.ip_network(str(destination), strict=True)
        except ValueError:
            raise BadRequest(
                f"Invalid input for routes. Reason: '{destination}' is not a valid IP "
                "subnet CIDR (use the network address, such as 10.0.0.0/24)."
            ) from None
        try:
            hop = ipaddress.ip_address(str(nexthop))
        except ValueError:
            raise BadRequest(
                f"Invalid input for routes. Reason: '{nexthop}' is not a valid IP address."
            ) from None
        route = {"destination": str(network), "nexthop": str(hop)}
        if str(hop) in {a for _, a in addresses}:
            raise BadRequest(
                f"Invalid format for routes: {route}, the nexthop is used by router",
                kind="InvalidRoutes",
            )
        if not any(hop in ipaddress.ip_network(cidr) for cidr, _ in addresses):
            raise BadRequest(
                f"Invalid format for routes: {route}, the nexthop is not connected with "
                "router: add an interface on the nexthop's subnet first.",
                kind="InvalidRoutes",
            )
        if route not in routes:
            routes.append(route)
    return routes

"""A router's external gateway (Neutron's ``external_gateway_info`` with ext-gw-mode): a port
on an external network, owned by no project (device_owner ``network:router_gateway``, as in
Neutron), SNAT on by default. Only admins choose the SNAT mode or the gateway's addresses
(Neutron's default policy)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden
from kumo.core.network import ports, standard
from kumo.core.network.networks import get_network
from kumo.core.network.router_ports import GATEWAY_OWNER, NEW_PORT_STATUS, elevated
from kumo.core.policy import Context
from kumo.db import models as m

GATEWAY_KEYS = frozenset({"network_id", "enable_snat", "external_fixed_ips"})


def gateway_info(session: Session, routers: list[m.Router]) -> dict[str, dict[str, Any] | None]:
    """Each router's ``external_gateway_info`` view (None without a gateway)."""
    gw_ports = [r.gw_port_id for r in routers if r.gw_port_id]
    fixed = ports.fixed_ips_of(session, gw_ports)
    found: dict[str, dict[str, Any] | None] = {}
    for router in routers:
        if router.gw_port_id is None or router.external_network_id is None:
            found[router.id] = None
            continue
        found[router.id] = {
            "network_id": router.external_network_id,
            "enable_snat": router.enable_snat,
            "external_fixed_ips": fixed.get(router.gw_port_id, []),
        }
    return found


def _check_info(ctx: Context, info: Any, action: Literal["create", "update"]) -> dict[str, Any]:
    if not isinstance(info, dict):
        raise BadRequest(
            f"Invalid input for external_gateway_info. Reason: '{info}' is not a dictionary."
        )
    unknown = sorted(set(info) - GATEWAY_KEYS)
    if unknown or not isinstance(info.get("network_id"), str) or not info["network_id"]:
        raise BadRequest(
            "Invalid input for external_gateway_info. Reason: Validation of dictionary's "
            f"keys failed. Expected keys: {{'network_id'}} Provided keys: {sorted(info)}"
        )
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info and not ctx.is_admin:
            raise Forbidden(
                f"(rule:{action}_router and rule:{action}_router:external_gateway_info:{key}) "
                f"is disallowed by policy: only an admin may set {key}.",
                kind="PolicyNotAuthorized",
            )
    fixed = info.get("external_fixed_ips")
    if fixed is not None and not isinstance(fixed, list):
        raise BadRequest(f"Invalid input for external_fixed_ips. Reason: '{fixed}' is not a list.")
    return info


def fips_via(session: Session, router_id: str) -> bool:
    """Floating IPs are translated by this router (they need its gateway)."""
    return bool(session.scalar(select(exists().where(m.FloatingIP.router_id == router_id))))


def clear_gateway(session: Session, router: m.Router) -> None:
    """Remove the router's gateway (and its port), unless floating IPs need it."""
    if router.gw_port_id is None:
        return
    if fips_via(session, router.id):
        raise Conflict(
            f"Gateway cannot be updated for router {router.id}, since a gateway to external "
            f"network {router.external_network_id} is required by one or more floating IPs: "
            "disassociate them first.",
            kind="RouterExternalGatewayInUseByFloatingIp",
        )
    port = session.get(m.Port, router.gw_port_id)
    router.gw_port_id = None
    router.external_network_id = None
    router.enable_snat = True
    session.flush()
    if port is not None:
        ports.remove(session, port)


def _interface_subnets(session: Session, router: m.Router) -> set[str]:
    return set(
        session.scalars(
            select(m.IPAllocation.subnet_id)
            .join(m.Port, m.Port.id == m.IPAllocation.port_id)
            .where(m.Port.device_id == router.id, m.Port.device_owner != GATEWAY_OWNER)
        )
    )


def set_gateway(
    session: Session, ctx: Context, router: m.Router, info: Any, action: Literal["create", "update"]
) -> None:
    """Set, change or (``None``/``{}``) clear the router's external gateway; ``action``
    (create or update) names the policy rule a refusal cites, as Neutron's does."""
    if not info:
        clear_gateway(session, router)
        return
    info = _check_info(ctx, info, action)
    network = get_network(session, ctx, info["network_id"])
    if not network.external:
        raise BadRequest(
            f"Bad router request: Network {network.id} is not an external network: "
            "a router's gateway must be on a network with router:external true.",
        )
    snat = standard.boolean(info, "enable_snat")
    fixed = info.get("external_fixed_ips")
    if router.gw_port_id is not None and router.external_network_id == network.id:
        if fixed is not None:
            ports.update_port(session, elevated(ctx), router.gw_port_id, {"fixed_ips": fixed})
    else:
        clear_gateway(session, router)
        attrs: dict[str, Any] = {
            "network_id": network.id,
            "project_id": router.project_id,
            "device_owner": GATEWAY_OWNER,
            "device_id": router.id,
            "name": "",
        }
        if fixed is not None:
            attrs["fixed_ips"] = fixed
        port = ports.create_port(session, elevated(ctx), attrs)
        # Neutron's gateway ports belong to no project.
        port.project_id = ""
        port.status = NEW_PORT_STATUS
        router.gw_port_id = port.id
        router.external_network_id = network.id
    gateway_ips = ports.fixed_ips_of(session, [router.gw_port_id])[router.gw_port_id]
    clash = {ip["subnet_id"] for ip in gateway_ips} & _interface_subnets(session, router)
    if clash:
        # The external network is also one of the router's inside networks.
        raise BadRequest(
            f"Bad router request: Router already has a port on subnet {sorted(clash)[0]}."
        )
    router.enable_snat = True if snat is None else snat
    session.flush()

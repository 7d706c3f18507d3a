"""/network/v2.0/ports: ports with fixed IPs, security groups, port security, allowed
address pairs, extra DHCP options and (for admins) the binding."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.common import V2, check_attributes, resource_body, standard_attrs
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, Forbidden
from kumo.core.network import ports, tags
from kumo.core.policy import Context
from kumo.db import models as m

router = APIRouter(prefix=V2)

UPDATE = {
    "name",
    "description",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "security_groups",
    "port_security_enabled",
    "allowed_address_pairs",
    "extra_dhcp_opts",
    "binding:host_id",
    "binding:vnic_type",
    "binding:profile",
    "dns_name",
    "qos_policy_id",
}
CREATE = UPDATE | {"network_id", "project_id", "tenant_id", "tags"}
# Neutron's policy: only admins set or see where a port is bound and how.
ADMIN_BINDING = ("binding:host_id", "binding:profile")
ADMIN_VIEW = ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details")


def views(session: Session, ctx: Context, rows: list[m.Port]) -> list[dict[str, Any]]:
    """Neutron's port views, with fixed IPs, groups and tags looked up once for all rows."""
    ids = [p.id for p in rows]
    data = ports.port_view_data(session, ids)
    tagged = tags.tags_of(session, ports.RESOURCE, ids)
    return [
        _view(ctx, p, data[p.id]["fixed_ips"], data[p.id]["security_groups"], tagged[p.id])
        for p in rows
    ]


def _view(
    ctx: Context, p: m.Port, fixed: list[dict[str, str]], groups: list[str], tag_list: list[str]
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        "mac_address": p.mac_address,
        "admin_state_up": p.admin_state_up,
        "status": p.status,
        "device_id": p.device_id,
        "device_owner": p.device_owner,
        "fixed_ips": fixed,
        "security_groups": groups,
        "port_security_enabled": p.port_security_enabled,
        "allowed_address_pairs": list(p.allowed_address_pairs or []),
        "extra_dhcp_opts": list(p.extra_dhcp_opts or []),
        "binding:vnic_type": p.binding_vnic_type,
        "dns_name": p.dns_name,
        "dns_assignment": [
            {"ip_address": f["ip_address"], "hostname": p.dns_name or _host(f), "fqdn": ""}
            for f in fixed
        ],
        "data_plane_status": None,
        "ip_allocation": "immediate",
        "propagate_uplink_status": False,
        "qos_policy_id": None,
        "qos_network_policy_id": None,
        "resource_request": None,
        **standard_attrs(p, tag_list),
    }
    if ctx.is_admin:
        view["binding:host_id"] = p.binding_host_id or ""
        view["binding:profile"] = dict(p.binding_profile or {})
        view["binding:vif_type"] = p.binding_vif_type
        view["binding:vif_details"] = dict(p.binding_vif_details or {})
    return view


PORT = handlers.Resource(
    singular="port",
    collection="ports",
    path="/ports",
    get=ports.get_port,
    render=views,
)


def _host(fixed: dict[str, str]) -> str:
    return "host-" + fixed["ip_address"].replace(".", "-").replace(":", "-")


def _fixed_ips_filter(view: dict[str, Any], wanted: list[str]) -> bool:
    """``fixed_ips=ip_address=A``, ``fixed_ips=subnet_id=S``, ``fixed_ips=ip_address_substr=x``:
    some fixed IP of the port meets every condition given."""
    conditions: dict[str, list[str]] = {}
    for raw in wanted:
        key, sep, value = raw.partition("=")
        if not sep or key not in ("ip_address", "subnet_id", "ip_address_substr"):
            raise BadRequest(
                f"Invalid fixed_ips filter '{raw}': use ip_address=, subnet_id= or "
                "ip_address_substr=."
            )
        conditions.setdefault(key, []).append(value)

    def meets(fixed: dict[str, str]) -> bool:
        if "ip_address" in conditions and fixed["ip_address"] not in conditions["ip_address"]:
            return False
        if "subnet_id" in conditions and fixed["subnet_id"] not in conditions["subnet_id"]:
            return False
        substrings = conditions.get("ip_address_substr")
        return not substrings or any(s in fixed["ip_address"] for s in substrings)

    return any(meets(f) for f in view.get("fixed_ips") or [])


def _policy(ctx: Context, data: dict[str, Any], action: str) -> None:
    if ctx.is_admin:
        return
    for key in ADMIN_BINDING:
        if data.get(key) not in (None, "", {}):
            raise Forbidden(f"(rule:{action}_port:{key}) is disallowed by policy")
    if action == "update" and data.get("mac_address") is not None:
        # Neutron lets only admins change a port's MAC (its owner picks it at creation).
        raise Forbidden("(rule:update_port:mac_address) is disallowed by policy")


def _qos(data: dict[str, Any]) -> None:
    if data.pop("qos_policy_id", None) is not None:
        raise BadRequest("QoS policies are not supported by kumo: leave qos_policy_id null.")


_create_tagged_port = handlers.tagged(ports.RESOURCE, ports.create_port)


def _create_port(session: Session, ctx: Context, data: dict[str, Any]) -> m.Port:
    """One port of a create request: policy and QoS are refused before its tags are read."""
    _policy(ctx, data, "create")
    _qos(data)
    return _create_tagged_port(session, ctx, data)


def _find_ports(session: Session, ctx: Context, q: QueryParams) -> list[m.Port]:
    """The ports the caller may see, narrowed in SQL by the commonest filters (Nova lists a
    server's ports by device_id); the listing applies every filter to the views after."""
    query = select(m.Port).where(ports.visible(ctx)).order_by(m.Port.created_at, m.Port.id)
    for key, column in (
        ("device_id", m.Port.device_id),
        ("network_id", m.Port.network_id),
        ("id", m.Port.id),
    ):
        if key in q:
            query = query.where(column.in_(q.getlist(key)))
    return list(session.scalars(query))


@router.post("/ports")
def create_ports(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    return handlers.create(state, who.ctx, body, PORT, CREATE, handlers.one_by_one(_create_port))


@router.get("/ports")
def list_ports(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    find = partial(_find_ports, q=request.query_params)
    return handlers.listing(
        request, state, who.ctx, PORT, find, special={"fixed_ips": _fixed_ips_filter}
    )


@router.get("/ports/{port_id}")
def show_port(
    port_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, PORT, port_id)


@router.put("/ports/{port_id}")
def update_port(
    port_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = dict(resource_body(body, PORT.singular))
    check_attributes(data, UPDATE)
    _policy(who.ctx, data, "update")
    _qos(data)
    return handlers.update(request, state, who.ctx, PORT, port_id, data, ports.update_port)


@router.delete("/ports/{port_id}")
def delete_port(
    port_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(request, state, who.ctx, PORT, port_id, ports.delete_port)

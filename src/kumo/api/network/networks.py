"""/network/v2.0/networks: Neutron networks with the provider, external-net, net-mtu,
port-security, availability zone and standard attributes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network.common import (
    V2,
    check_attributes,
    check_revision,
    create_tags,
    list_response,
    resource_body,
    resource_items,
    show_fields,
    standard_attrs,
)
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest
from kumo.core.network import networks, tags
from kumo.core.policy import Context
from kumo.db import models as m

router = APIRouter(prefix=V2)

COMMON = {
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "port_security_enabled",
    "mtu",
    "is_default",
    "dns_domain",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "qos_policy_id",
}
CREATE = COMMON | {"project_id", "tenant_id", "availability_zone_hints", "tags"}
UPDATE = COMMON | {"availability_zone_hints"}


def views(session: Session, ctx: Context, rows: list[m.Network]) -> list[dict[str, Any]]:
    """Neutron's network views, with the lookups done once for all rows."""
    ids = [n.id for n in rows]
    subnets = networks.subnet_ids_of(session, ids)
    tagged = tags.tags_of(session, networks.RESOURCE, ids)
    return [_view(ctx, n, subnets[n.id], tagged[n.id]) for n in rows]


def _view(ctx: Context, n: m.Network, subnets: list[str], tag_list: list[str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": n.id,
        "name": n.name,
        "admin_state_up": n.admin_state_up,
        "status": n.status,
        "subnets": subnets,
        "shared": n.shared,
        "router:external": n.external,
        "is_default": n.is_default,
        "mtu": n.mtu,
        "port_security_enabled": n.port_security_enabled,
        "availability_zone_hints": list(n.availability_zone_hints or []),
        "availability_zones": ["nova"],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "l2_adjacency": True,
        "dns_domain": n.dns_domain,
        "qos_policy_id": None,
        **standard_attrs(n, tag_list),
    }
    if ctx.is_admin:
        # Neutron's policy shows the provider segment to admins only.
        view["provider:network_type"] = n.network_type
        view["provider:physical_network"] = n.physical_network
        view["provider:segmentation_id"] = n.segmentation_id
    return view


def _qos(data: dict[str, Any]) -> None:
    if data.pop("qos_policy_id", None) is not None:
        raise BadRequest("QoS policies are not supported by kumo: leave qos_policy_id null.")


@router.post("/networks")
def create_networks(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "network", "networks")
    ctx = who.ctx
    with state.db.session() as session:
        rows = []
        for data in items:
            check_attributes(data, CREATE)
            data = dict(data)
            wanted_tags = create_tags(data)
            _qos(data)
            network = networks.create_network(session, ctx, state.config.network, data)
            if wanted_tags:
                tags.replace_tags(session, networks.RESOURCE, network.id, wanted_tags)
            rows.append(network)
        session.flush()
        rendered = views(session, ctx, rows)
    if bulk:
        return JSONResponse({"networks": rendered}, status_code=201)
    return JSONResponse({"network": rendered[0]}, status_code=201)


@router.get("/networks")
def list_networks(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    ctx = who.ctx
    with state.db.session() as session:
        rendered = views(session, ctx, networks.list_networks(session, ctx))
    return list_response(
        request.query_params, "networks", rendered, state.config.public_url + V2 + "/networks"
    )


@router.get("/networks/{network_id}")
def show_network(
    network_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    ctx = who.ctx
    with state.db.session() as session:
        network = networks.get_network(session, ctx, network_id)
        view = views(session, ctx, [network])[0]
    return {"network": show_fields(request.query_params, view)}


@router.put("/networks/{network_id}")
def update_network(
    network_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = dict(resource_body(body, "network"))
    check_attributes(data, UPDATE)
    _qos(data)
    ctx = who.ctx
    with state.db.session() as session:
        check_revision(request.headers, networks.get_network(session, ctx, network_id))
        network = networks.update_network(session, ctx, network_id, data)
        view = views(session, ctx, [network])[0]
    return {"network": view}


@router.delete("/networks/{network_id}")
def delete_network(
    network_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, networks.get_network(session, who.ctx, network_id))
        networks.delete_network(session, who.ctx, network_id)
    return Response(status_code=204)

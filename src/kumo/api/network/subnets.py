"""/network/v2.0/subnets: IPv4 and IPv6 subnets, their pools, gateway, DNS and routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.common import V2, check_attributes, resource_body, standard_attrs
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest
from kumo.core.network import subnets, tags
from kumo.core.policy import Context
from kumo.db import models as m

router = APIRouter(prefix=V2)

UPDATE = {
    "name",
    "description",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "service_types",
    "segment_id",
}
CREATE = UPDATE | {
    "network_id",
    "ip_version",
    "cidr",
    "subnetpool_id",
    "prefixlen",
    "use_default_subnetpool",
    "project_id",
    "tenant_id",
    "tags",
}


def views(session: Session, rows: list[m.Subnet]) -> list[dict[str, Any]]:
    tagged = tags.tags_of(session, subnets.RESOURCE, [s.id for s in rows])
    return [view(s, tagged[s.id]) for s in rows]


def view(s: m.Subnet, tag_list: list[str]) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "network_id": s.network_id,
        "ip_version": s.ip_version,
        "cidr": s.cidr,
        "gateway_ip": s.gateway_ip,
        "enable_dhcp": s.enable_dhcp,
        "dns_nameservers": list(s.dns_nameservers or []),
        "host_routes": list(s.host_routes or []),
        "allocation_pools": list(s.allocation_pools or []),
        "ipv6_ra_mode": s.ipv6_ra_mode,
        "ipv6_address_mode": s.ipv6_address_mode,
        "subnetpool_id": s.subnetpool_id,
        "service_types": list(s.service_types or []),
        "segment_id": None,
        "dns_publish_fixed_ip": False,
        **standard_attrs(s, tag_list),
    }


SUBNET = handlers.Resource(
    singular="subnet",
    collection="subnets",
    path="/subnets",
    get=subnets.get_subnet,
    render=handlers.for_any_caller(views),
)


def _segment(data: dict[str, Any]) -> None:
    """kumo has no routed network segments: refuse one rather than ignore it."""
    if data.get("segment_id") is not None:
        raise BadRequest("kumo has no routed network segments: leave segment_id null.")
    data.pop("segment_id", None)


def _create_subnet(session: Session, ctx: Context, data: dict[str, Any]) -> m.Subnet:
    """One subnet of a create request (its tags are set by the shared flow)."""
    _segment(data)
    return subnets.create_subnet(session, ctx, data)


@router.post("/subnets")
def create_subnets(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    create = handlers.one_by_one(handlers.tagged(subnets.RESOURCE, _create_subnet))
    return handlers.create(state, who.ctx, body, SUBNET, CREATE, create)


@router.get("/subnets")
def list_subnets(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return handlers.listing(request, state, who.ctx, SUBNET, subnets.list_subnets)


@router.get("/subnets/{subnet_id}")
def show_subnet(
    subnet_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, SUBNET, subnet_id)


@router.put("/subnets/{subnet_id}")
def update_subnet(
    subnet_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = dict(resource_body(body, SUBNET.singular))
    check_attributes(data, UPDATE)
    _segment(data)
    return handlers.update(request, state, who.ctx, SUBNET, subnet_id, data, subnets.update_subnet)


@router.delete("/subnets/{subnet_id}")
def delete_subnet(
    subnet_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(request, state, who.ctx, SUBNET, subnet_id, subnets.delete_subnet)

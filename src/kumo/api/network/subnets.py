"""/network/v2.0/subnets: IPv4 and IPv6 subnets, their pools, gateway, DNS and routes."""

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
from kumo.core.network import subnets, tags
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


def _segment(data: dict[str, Any]) -> None:
    if data.get("segment_id") is not None:
        raise BadRequest("kumo has no routed network segments: leave segment_id null.")
    data.pop("segment_id", None)


@router.post("/subnets")
def create_subnets(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "subnet", "subnets")
    ctx = who.ctx
    with state.db.session() as session:
        rows = []
        for data in items:
            check_attributes(data, CREATE)
            data = dict(data)
            wanted_tags = create_tags(data)
            _segment(data)
            subnet = subnets.create_subnet(session, ctx, data)
            if wanted_tags:
                tags.replace_tags(session, subnets.RESOURCE, subnet.id, wanted_tags)
            rows.append(subnet)
        session.flush()
        rendered = views(session, rows)
    if bulk:
        return JSONResponse({"subnets": rendered}, status_code=201)
    return JSONResponse({"subnet": rendered[0]}, status_code=201)


@router.get("/subnets")
def list_subnets(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        rendered = views(session, subnets.list_subnets(session, who.ctx))
    return list_response(
        request.query_params, "subnets", rendered, state.config.public_url + V2 + "/subnets"
    )


@router.get("/subnets/{subnet_id}")
def show_subnet(
    subnet_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        rendered = views(session, [subnets.get_subnet(session, who.ctx, subnet_id)])[0]
    return {"subnet": show_fields(request.query_params, rendered)}


@router.put("/subnets/{subnet_id}")
def update_subnet(
    subnet_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = dict(resource_body(body, "subnet"))
    check_attributes(data, UPDATE)
    _segment(data)
    with state.db.session() as session:
        check_revision(request.headers, subnets.get_subnet(session, who.ctx, subnet_id))
        subnet = subnets.update_subnet(session, who.ctx, subnet_id, data)
        rendered = views(session, [subnet])[0]
    return {"subnet": rendered}


@router.delete("/subnets/{subnet_id}")
def delete_subnet(
    subnet_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, subnets.get_subnet(session, who.ctx, subnet_id))
        subnets.delete_subnet(session, who.ctx, subnet_id)
    return Response(status_code=204)

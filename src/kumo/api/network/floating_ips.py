"""/network/v2.0/floatingips: Neutron's floating IPs (with fip-port-details)."""

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
    check_update_attributes,
    list_response,
    resource_body,
    resource_items,
    show_fields,
    standard_attrs,
)
from kumo.api.state import AppState, app_state
from kumo.core.network import floating_ips
from kumo.core.network.tags import tags_of
from kumo.db import models as m

router = APIRouter(prefix=V2 + "/floatingips")

COLLECTION = "floatingips"
READ_ONLY = frozenset({"id", "status", "router_id", "revision_number", "port_details"})


def fip_views(session: Session, found: list[m.FloatingIP]) -> list[dict[str, Any]]:
    details = floating_ips.port_details(session, found)
    tags = tags_of(session, floating_ips.TAG_TYPE, [f.id for f in found])
    views = []
    for fip in found:
        view: dict[str, Any] = {
            "id": fip.id,
            "floating_ip_address": fip.floating_ip_address,
            "floating_network_id": fip.floating_network_id,
            "router_id": fip.router_id,
            "port_id": fip.port_id,
            "fixed_ip_address": fip.fixed_ip_address,
            "status": fip.status,
            "port_details": details[fip.id],
        }
        view.update(standard_attrs(fip, tags[fip.id]))
        views.append(view)
    return views


@router.get("")
def list_fips(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        views = fip_views(session, floating_ips.list_floating_ips(session, who.ctx))
    return list_response(
        request.query_params, COLLECTION, views, state.config.public_url + router.prefix
    )


@router.post("")
def create_fips(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "floatingip", COLLECTION)
    for item in items:
        check_attributes(item, floating_ips.CREATE_ATTRS)
    with state.db.session() as session:
        made = [floating_ips.create_floating_ip(session, who.ctx, item) for item in items]
        views = fip_views(session, made)
    if bulk:
        return JSONResponse({COLLECTION: views}, status_code=201)
    return JSONResponse({"floatingip": views[0]}, status_code=201)


@router.get("/{fip_id}")
def show_fip(
    fip_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        view = fip_views(session, [floating_ips.get_floating_ip(session, who.ctx, fip_id)])[0]
    return {"floatingip": show_fields(request.query_params, view)}


@router.put("/{fip_id}")
def update_fip(
    fip_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, "floatingip")
    check_update_attributes(data, floating_ips.UPDATE_ATTRS, floating_ips.CREATE_ATTRS | READ_ONLY)
    with state.db.session() as session:
        check_revision(request.headers, floating_ips.get_floating_ip(session, who.ctx, fip_id))
        fip = floating_ips.update_floating_ip(session, who.ctx, fip_id, data)
        view = fip_views(session, [fip])[0]
    return {"floatingip": view}


@router.delete("/{fip_id}")
def delete_fip(
    fip_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, floating_ips.get_floating_ip(session, who.ctx, fip_id))
        floating_ips.delete_floating_ip(session, who.ctx, fip_id)
    return Response(status_code=204)

"""/network/v2.0/floatingips: Neutron's floating IPs (with fip-port-details)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.common import V2, check_update_attributes, resource_body, standard_attrs
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


FLOATING_IP = handlers.Resource(
    singular="floatingip",
    collection=COLLECTION,
    path="/floatingips",
    get=floating_ips.get_floating_ip,
    render=handlers.for_any_caller(fip_views),
)


@router.get("")
def list_fips(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return handlers.listing(request, state, who.ctx, FLOATING_IP, floating_ips.list_floating_ips)


@router.post("")
def create_fips(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    create = handlers.one_by_one(floating_ips.create_floating_ip)
    return handlers.create(state, who.ctx, body, FLOATING_IP, floating_ips.CREATE_ATTRS, create)


@router.get("/{fip_id}")
def show_fip(
    fip_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, FLOATING_IP, fip_id)


@router.put("/{fip_id}")
def update_fip(
    fip_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, FLOATING_IP.singular)
    check_update_attributes(data, floating_ips.UPDATE_ATTRS, floating_ips.CREATE_ATTRS | READ_ONLY)
    return handlers.update(
        request, state, who.ctx, FLOATING_IP, fip_id, data, floating_ips.update_floating_ip
    )


@router.delete("/{fip_id}")
def delete_fip(
    fip_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(
        request, state, who.ctx, FLOATING_IP, fip_id, floating_ips.delete_floating_ip
    )

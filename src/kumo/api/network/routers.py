"""/network/v2.0/routers: Neutron's routers, their external gateway, static routes and
interfaces (add_router_interface / remove_router_interface)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network.availability_zones import ZONE
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
from kumo.core.network import router_gateway, router_interfaces, routers
from kumo.core.network.tags import tags_of
from kumo.db import models as m

router = APIRouter(prefix=V2 + "/routers")

COLLECTION = "routers"
READ_ONLY = frozenset({"id", "status", "availability_zones", "revision_number", "tenant_id"})


def router_views(session: Session, found: list[m.Router]) -> list[dict[str, Any]]:
    gateways = router_gateway.gateway_info(session, found)
    tags = tags_of(session, routers.TAG_TYPE, [r.id for r in found])
    views = []
    for r in found:
        view: dict[str, Any] = {
            "id": r.id,
            "name": r.name,
            "admin_state_up": r.admin_state_up,
            "status": r.status,
            "external_gateway_info": gateways[r.id],
            "routes": list(r.routes or []),
            "distributed": False,
            "ha": False,
            "availability_zone_hints": list(r.availability_zone_hints or []),
            # The zone of the host that carries it (kumo's hosts are all in one zone).
            "availability_zones": [ZONE] if r.host_id else [],
            "flavor_id": None,
        }
        view.update(standard_attrs(r, tags[r.id]))
        views.append(view)
    return views


@router.get("")
def list_routers(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        views = router_views(session, routers.list_routers(session, who.ctx))
    return list_response(
        request.query_params, COLLECTION, views, state.config.public_url + router.prefix
    )


@router.post("")
def create_routers(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "router", COLLECTION)
    for item in items:
        check_attributes(item, routers.CREATE_ATTRS)
    timeout = state.config.hosts.heartbeat_timeout
    with state.db.session() as session:
        made = [routers.create_router(session, who.ctx, item, timeout) for item in items]
        views = router_views(session, made)
    if bulk:
        return JSONResponse({COLLECTION: views}, status_code=201)
    return JSONResponse({"router": views[0]}, status_code=201)


@router.get("/{router_id}")
def show_router(
    router_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        view = router_views(session, [routers.get_router(session, who.ctx, router_id)])[0]
    return {"router": show_fields(request.query_params, view)}


@router.put("/{router_id}")
def update_router(
    router_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, "router")
    check_update_attributes(data, routers.UPDATE_ATTRS, routers.CREATE_ATTRS | READ_ONLY)
    with state.db.session() as session:
        check_revision(request.headers, routers.get_router(session, who.ctx, router_id))
        found = routers.update_router(session, who.ctx, router_id, data)
        view = router_views(session, [found])[0]
    return {"router": view}


@router.delete("/{router_id}")
def delete_router(
    router_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, routers.get_router(session, who.ctx, router_id))
        routers.delete_router(session, who.ctx, router_id)
    return Response(status_code=204)


@router.put("/{router_id}/add_router_interface")
def add_router_interface(
    router_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        found = routers.get_router(session, who.ctx, router_id)
        return router_interfaces.add_interface(session, who.ctx, found, body)


@router.put("/{router_id}/remove_router_interface")
def remove_router_interface(
    router_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        found = routers.get_router(session, who.ctx, router_id)
        return router_interfaces.remove_interface(session, who.ctx, found, body)

"""/network/v2.0/routers: Neutron's routers, their external gateway, static routes and
interfaces (add_router_interface / remove_router_interface)."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.availability_zones import ZONE
from kumo.api.network.common import V2, check_update_attributes, resource_body, standard_attrs
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest
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


ROUTER = handlers.Resource(
    singular="router",
    collection=COLLECTION,
    path="/routers",
    get=routers.get_router,
    render=handlers.for_any_caller(router_views),
)


@router.get("")
def list_routers(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return handlers.listing(request, state, who.ctx, ROUTER, routers.list_routers)


@router.post("")
def create_routers(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    # A router is placed on a host whose agent has reported within the heartbeat timeout.
    timeout = state.config.hosts.heartbeat_timeout
    create = handlers.one_by_one(partial(routers.create_router, heartbeat_timeout=timeout))
    return handlers.create(state, who.ctx, body, ROUTER, routers.CREATE_ATTRS, create)


@router.get("/{router_id}")
def show_router(
    router_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, ROUTER, router_id)


@router.put("/{router_id}")
def update_router(
    router_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, ROUTER.singular)
    check_update_attributes(data, routers.UPDATE_ATTRS, routers.CREATE_ATTRS | READ_ONLY)
    return handlers.update(request, state, who.ctx, ROUTER, router_id, data, routers.update_router)


@router.delete("/{router_id}")
def delete_router(
    router_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(request, state, who.ctx, ROUTER, router_id, routers.delete_router)


_INTERFACE_KEYS = frozenset({"subnet_id", "port_id"})


def _interface_ids(body: Any) -> tuple[str | None, str | None]:
    """The subnet and/or port an add/remove_router_interface body names (at least one).
    Checked after the router is found, as Neutron does: an unknown router is a 404 first."""
    if not isinstance(body, dict) or not (body.get("subnet_id") or body.get("port_id")):
        raise BadRequest("Bad router request: Either subnet_id or port_id must be specified.")
    unknown = sorted(set(body) - _INTERFACE_KEYS)
    if unknown:
        raise BadRequest("Unrecognized attribute(s) '{}'".format(", ".join(unknown)))
    subnet_id, port_id = body.get("subnet_id"), body.get("port_id")
    for key, value in (("subnet_id", subnet_id), ("port_id", port_id)):
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not a valid UUID.")
    return subnet_id, port_id


@router.put("/{router_id}/add_router_interface")
def add_router_interface(
    router_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        found = routers.get_router(session, who.ctx, router_id)
        subnet_id, port_id = _interface_ids(body)
        return router_interfaces.add_interface(session, who.ctx, found, subnet_id, port_id)


@router.put("/{router_id}/remove_router_interface")
def remove_router_interface(
    router_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        found = routers.get_router(session, who.ctx, router_id)
        subnet_id, port_id = _interface_ids(body)
        return router_interfaces.remove_interface(session, who.ctx, found, subnet_id, port_id)

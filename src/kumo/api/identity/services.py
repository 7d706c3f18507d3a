"""/v3/services, /v3/endpoints and /v3/regions: the catalog."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.identity import catalog
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter()


def _service(s: m.Service, base: str) -> dict[str, Any]:
    return {
        **{k: v for k, v in (s.extra or {}).items() if k != catalog.MANAGED},
        "id": s.id,
        "type": s.type,
        "name": s.name,
        "enabled": s.enabled,
        "description": s.description,
        "links": {"self": f"{base}/services/{s.id}"},
    }


def _endpoint(e: m.Endpoint, base: str) -> dict[str, Any]:
    return {
        **{k: v for k, v in (e.extra or {}).items() if k != catalog.MANAGED},
        "id": e.id,
        "service_id": e.service_id,
        "interface": e.interface,
        "region": e.region_id,
        "region_id": e.region_id,
        "url": e.url,
        "enabled": e.enabled,
        "links": {"self": f"{base}/endpoints/{e.id}"},
    }


def _region(r: m.Region, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "description": r.description,
        "parent_region_id": r.parent_region_id,
        "links": {"self": f"{base}/regions/{r.id}"},
    }


@router.get("/services")
def list_services(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_services")
    q = request.query_params
    with state.db.session() as session:
        rows = catalog.list_services(session, q.get("type"), q.get("name"))
    base = state.identity_url
    return views.collection("services", [_service(s, base) for s in rows], base + "/services")


@router.post("/services", status_code=201)
def create_service(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        svc = catalog.create_service(session, member(body, "service"))
    return {"service": _service(svc, state.identity_url)}


@router.get("/services/{service_id}")
def get_service(
    service_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_services")
    with state.db.session() as session:
        svc = catalog.get_service(session, service_id)
    return {"service": _service(svc, state.identity_url)}


@router.patch("/services/{service_id}")
def update_service(
    service_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        svc = catalog.update_service(session, service_id, member(body, "service"))
    return {"service": _service(svc, state.identity_url)}


@router.delete("/services/{service_id}", status_code=204)
def delete_service(
    service_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        catalog.delete_service(session, service_id)
    return Response(status_code=204)


@router.get("/endpoints")
def list_endpoints(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_endpoints")
    q = request.query_params
    with state.db.session() as session:
        rows = catalog.list_endpoints(
            session, q.get("interface"), q.get("service_id"), q.get("region_id")
        )
    base = state.identity_url
    return views.collection("endpoints", [_endpoint(e, base) for e in rows], base + "/endpoints")


@router.post("/endpoints", status_code=201)
def create_endpoint(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        ep = catalog.create_endpoint(session, member(body, "endpoint"))
    return {"endpoint": _endpoint(ep, state.identity_url)}


@router.get("/endpoints/{endpoint_id}")
def get_endpoint(
    endpoint_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_endpoints")
    with state.db.session() as session:
        ep = catalog.get_endpoint(session, endpoint_id)
    return {"endpoint": _endpoint(ep, state.identity_url)}


@router.patch("/endpoints/{endpoint_id}")
def update_endpoint(
    endpoint_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        ep = catalog.update_endpoint(session, endpoint_id, member(body, "endpoint"))
    return {"endpoint": _endpoint(ep, state.identity_url)}


@router.delete("/endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(
    endpoint_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        catalog.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.get("/regions")
def list_regions(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_regions")
    with state.db.session() as session:
        rows = catalog.list_regions(session, request.query_params.get("parent_region_id"))
    base = state.identity_url
    return views.collection("regions", [_region(r, base) for r in rows], base + "/regions")


@router.post("/regions", status_code=201)
def create_region(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        region = catalog.create_region(session, member(body, "region"))
    return {"region": _region(region, state.identity_url)}


@router.put("/regions/{region_id}", status_code=201)
def put_region(
    region_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        region = catalog.create_region(session, member(body, "region"), region_id)
    return {"region": _region(region, state.identity_url)}


@router.get("/regions/{region_id}")
def get_region(
    region_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_regions")
    with state.db.session() as session:
        region = catalog.get_region(session, region_id)
    return {"region": _region(region, state.identity_url)}


@router.patch("/regions/{region_id}")
def update_region(
    region_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        region = catalog.update_region(session, region_id, member(body, "region"))
    return {"region": _region(region, state.identity_url)}


@router.delete("/regions/{region_id}", status_code=204)
def delete_region(
    region_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:manage_catalog")
    with state.db.session() as session:
        catalog.delete_region(session, region_id)
    return Response(status_code=204)

"""/compute/v2.1/flavors: sizes, extra specs and private-flavor access."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute import flavor_bodies
from kumo.api.compute.common import body_member, bool_param, int_param, links
from kumo.api.state import AppState, app_state
from kumo.core.compute import flavors
from kumo.core.errors import BadRequest, NotFound
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


def brief(state: AppState, f: m.Flavor) -> dict[str, Any]:
    return {"id": f.id, "name": f.name, "links": links(state, "flavors", f.id)}


def detail(state: AppState, f: m.Flavor) -> dict[str, Any]:
    return {
        **brief(state, f),
        "ram": f.memory_mb,
        "disk": f.root_gb,
        "vcpus": f.vcpus,
        "swap": f.swap_mb or "",
        "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": f.disabled,
        "os-flavor-access:is_public": f.is_public,
        "rxtx_factor": f.rxtx_factor,
    }


def _list(request: Request, who: Caller, state: AppState) -> list[m.Flavor]:
    q = request.query_params
    ctx = who.ctx
    filters = {
        "is_public": bool_param(q, "is_public"),
        "min_ram": int_param(q, "minRam"),
        "min_disk": int_param(q, "minDisk"),
        "sort_key": q.get("sort_key"),
        "sort_dir": q.get("sort_dir"),
        "limit": int_param(q, "limit"),
        "marker": q.get("marker"),
    }
    if filters["sort_dir"] not in (None, "asc", "desc"):
        raise BadRequest(f"Invalid sort_dir {filters['sort_dir']}.")
    with state.db.session() as session:
        return flavors.list_flavors(session, ctx.project_id, ctx.is_admin, filters)


@router.get("/flavors")
def list_flavors(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {"flavors": [brief(state, f) for f in _list(request, who, state)]}


@router.get("/flavors/detail")
def list_flavors_detail(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {"flavors": [detail(state, f) for f in _list(request, who, state)]}


@router.post("/flavors")
def create_flavor(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:manage_flavors")
    spec = flavor_bodies.parse_create(body_member(body, "flavor"))
    with state.db.session() as session:
        flavor = flavors.create(session, spec)
    return {"flavor": detail(state, flavor)}


def _visible(state: AppState, who: Caller, flavor_id: str) -> m.Flavor:
    ctx = who.ctx
    with state.db.session() as session:
        return flavors.get(session, flavor_id, ctx.project_id, ctx.is_admin)


@router.get("/flavors/{flavor_id}")
def get_flavor(
    flavor_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {"flavor": detail(state, _visible(state, who, flavor_id))}


@router.delete("/flavors/{flavor_id}", status_code=202)
def delete_flavor(
    flavor_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "compute:manage_flavors")
    with state.db.session() as session:
        flavors.delete(session, flavor_id)
    return Response(status_code=202)


@router.get("/flavors/{flavor_id}/os-extra_specs")
def list_extra_specs(
    flavor_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return {"extra_specs": dict(_visible(state, who, flavor_id).extra_specs or {})}


@router.post("/flavors/{flavor_id}/os-extra_specs")
def create_extra_specs(
    flavor_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:manage_flavors")
    specs = body.get("extra_specs") if isinstance(body, dict) else None
    with state.db.session() as session:
        flavor = flavors.get(session, flavor_id)
        flavors.set_extra_specs(session, flavor, specs)
        return {"extra_specs": dict(flavor.extra_specs)}


@router.get("/flavors/{flavor_id}/os-extra_specs/{key}")
def get_extra_spec(
    flavor_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    specs = _visible(state, who, flavor_id).extra_specs or {}
    if key not in specs:
        raise NotFound(f"Flavor {flavor_id} has no extra specs with key {key}.")
    return {key: specs[key]}


@router.put("/flavors/{flavor_id}/os-extra_specs/{key}")
def update_extra_spec(
    flavor_id: str,
    key: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:manage_flavors")
    if not isinstance(body, dict) or len(body) != 1 or key not in body:
        raise BadRequest(
            "Request body and URI mismatch: the body must hold exactly the key named in the URL."
        )
    with state.db.session() as session:
        flavor = flavors.get(session, flavor_id)
        specs = flavors.set_extra_specs(session, flavor, body)
        return {key: specs[key]}


@router.delete("/flavors/{flavor_id}/os-extra_specs/{key}")
def delete_extra_spec(
    flavor_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "compute:manage_flavors")
    with state.db.session() as session:
        flavors.delete_extra_spec(flavors.get(session, flavor_id), key)
    return Response(status_code=200)  # Nova's answer (not 202 or 204)


def _access_body(flavor_id: str, projects: list[str]) -> dict[str, Any]:
    return {"flavor_access": [{"flavor_id": flavor_id, "tenant_id": p} for p in projects]}


@router.get("/flavors/{flavor_id}/os-flavor-access")
def list_access(
    flavor_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "compute:manage_flavors")
    with state.db.session() as session:
        return _access_body(
            flavor_id, flavors.access_list(session, flavors.get(session, flavor_id))
        )


@router.post("/flavors/{flavor_id}/action")
def flavor_action(
    flavor_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:manage_flavors")
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid action: exactly one action is expected.")
    action, args = next(iter(body.items()))
    tenant = args.get("tenant") if isinstance(args, dict) else None
    with state.db.session() as session:
        flavor = flavors.get(session, flavor_id)
        if action == "addTenantAccess":
            flavors.add_access(session, flavor, tenant)
        elif action == "removeTenantAccess":
            flavors.remove_access(session, flavor, tenant)
        else:
            raise BadRequest(f"Unknown flavor action {action}.")
        session.flush()
        return _access_body(flavor_id, flavors.access_list(session, flavor))

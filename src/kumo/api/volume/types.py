"""/volume/v3/types: volume types, their extra specs and access lists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.state import AppState, app_state
from kumo.api.volume.common import PREFIX, bool_param, type_view
from kumo.core.errors import BadRequest, NotFound
from kumo.core.policy import enforce
from kumo.core.volume import types

router = APIRouter(prefix=PREFIX)


@router.get("/types")
def list_types(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    is_public = bool_param(request.query_params, "is_public")
    with state.db.session() as session:
        rows = types.list_types(session, who.ctx, is_public)
        return {"volume_types": [type_view(t, who.ctx) for t in rows]}


@router.get("/types/default")
def default_type(who: Caller = Depends(caller), state: AppState = Depends(app_state)) -> Any:
    with state.db.session() as session:
        return {"volume_type": type_view(types.ensure_default(session), who.ctx)}


def _is_public(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest("Invalid input for field/attribute is_public: a boolean expected.")
    return value


def _description(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise BadRequest("Invalid input for field/attribute description.")
    return value


def _parse_create(data: dict[str, Any]) -> types.TypeSpec:
    """The ``volume_type`` member of a create: ``is_public`` also under its v2 extension
    name, ``os-volume-type-access:is_public``."""
    name = types.check_name(data.get("name"))
    is_public = _is_public(data.get("os-volume-type-access:is_public", data.get("is_public", True)))
    return types.TypeSpec(
        name=name,
        is_public=is_public,
        description=_description(data.get("description")),
        extra_specs=types.check_specs(data.get("extra_specs")),
    )


def _parse_update(data: dict[str, Any]) -> types.TypeUpdate:
    """Only the fields named change; a null name keeps the name."""
    name = data.get("name")
    return types.TypeUpdate(
        name=types.check_name(name) if name is not None else None,
        is_public=_is_public(data["is_public"]) if "is_public" in data else None,
        set_description="description" in data,
        description=_description(data.get("description")),
    )


@router.post("/types")
def create_type(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "volume:manage_types")  # a 403 before any 400, as before parsing moved here
    spec = _parse_create(member(body, "volume_type"))
    with state.db.session() as session:
        row = types.create(session, who.ctx, spec)
        view = type_view(row, who.ctx)
    view.pop("qos_specs_id")  # not in a create answer
    return {"volume_type": view}


@router.get("/types/{type_id}")
def show_type(
    type_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"volume_type": type_view(types.get(session, who.ctx, type_id), who.ctx)}


@router.put("/types/{type_id}")
def update_type(
    type_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "volume:manage_types")
    change = _parse_update(member(body, "volume_type"))
    with state.db.session() as session:
        row = types.update(session, who.ctx, type_id, change)
        session.flush()
        view = type_view(row, who.ctx)
    view.pop("qos_specs_id")
    return {"volume_type": view}


@router.delete("/types/{type_id}", status_code=202)
def delete_type(
    type_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        types.delete(session, who.ctx, type_id)
    return Response(status_code=202)


@router.get("/types/{type_id}/extra_specs")
def list_extra_specs(
    type_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"extra_specs": dict(types.get(session, who.ctx, type_id).extra_specs or {})}


@router.post("/types/{type_id}/extra_specs")
def set_extra_specs(
    type_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    specs = member(body, "extra_specs")
    with state.db.session() as session:
        types.set_extra_specs(session, who.ctx, type_id, specs)
    return {"extra_specs": specs}


@router.get("/types/{type_id}/extra_specs/{key}")
def show_extra_spec(
    type_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        specs = types.get(session, who.ctx, type_id).extra_specs or {}
    if key not in specs:
        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    return {key: specs[key]}


@router.put("/types/{type_id}/extra_specs/{key}")
def update_extra_spec(
    type_id: str,
    key: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    if not isinstance(body, dict) or len(body) != 1 or key not in body:
        raise BadRequest("Request body and URI mismatch")
    with state.db.session() as session:
        types.set_extra_specs(session, who.ctx, type_id, body)
    return {key: body[key]}


@router.delete("/types/{type_id}/extra_specs/{key}", status_code=202)
def delete_extra_spec(
    type_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        types.delete_extra_spec(session, who.ctx, type_id, key)
    return Response(status_code=202)


@router.get("/types/{type_id}/os-volume-type-access")
def type_access(
    type_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        projects = types.access_list(session, who.ctx, type_id)
    return {"volume_type_access": [{"volume_type_id": type_id, "project_id": p} for p in projects]}


@router.post("/types/{type_id}/action", status_code=202)
def type_action(
    type_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid action: the body must name exactly one action.")
    action, args = next(iter(body.items()))
    project = args.get("project") if isinstance(args, dict) else None
    with state.db.session() as session:
        if action == "addProjectAccess":
            types.add_access(session, who.ctx, type_id, project)
        elif action == "removeProjectAccess":
            types.remove_access(session, who.ctx, type_id, project)
        else:
            raise BadRequest(f"There is no such action: {action}")
    return Response(status_code=202)

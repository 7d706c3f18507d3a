"""/volume/v3/volumes: create, list, show, update, delete, metadata and actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.state import AppState, app_state
from kumo.api.volume import volume_bodies
from kumo.api.volume.common import (
    PREFIX,
    bool_param,
    cinder_time,
    created_view,
    int_param,
    metadata_param,
    next_link,
    volume_view_one,
    volume_views,
)
from kumo.core.errors import BadRequest
from kumo.core.volume import attachments, uploads, volumes
from kumo.db import models as m

router = APIRouter(prefix=PREFIX)


def placement(state: AppState) -> volumes.Placement:
    found = state.env.volume_placement
    assert found is not None
    return found


def _filters(request: Request, who: Caller) -> volumes.ListFilters:
    q = request.query_params
    all_tenants = bool_param(q, "all_tenants") or False
    return volumes.ListFilters(
        all_tenants=all_tenants and who.ctx.is_admin,
        project_id=q.get("project_id"),
        name=q.get("name", q.get("display_name")),
        status=q.get("status"),
        availability_zone=q.get("availability_zone"),
        bootable=bool_param(q, "bootable"),
        metadata=metadata_param(q),
        limit=int_param(q, "limit"),
        marker=q.get("marker"),
        sort=volumes.parse_sort(q.get("sort"), q.get("sort_key"), q.get("sort_dir")),
    )


@router.get("/volumes")
def list_volumes(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    f = _filters(request, who)
    with state.db.session() as session:
        rows = volumes.list_volumes(session, who.ctx, f)
        views = volume_views(session, state, who.ctx, rows)
    body: dict[str, Any] = {
        "volumes": [{"id": v["id"], "name": v["name"], "links": v["links"]} for v in views]
    }
    more = next_link(state, who.ctx, "volumes", request.query_params, rows, f.limit)
    if more:
        body["volumes_links"] = more
    return body


@router.get("/volumes/detail")
def list_volumes_detail(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    f = _filters(request, who)
    with state.db.session() as session:
        rows = volumes.list_volumes(session, who.ctx, f)
        body: dict[str, Any] = {"volumes": volume_views(session, state, who.ctx, rows)}
    more = next_link(state, who.ctx, "volumes/detail", request.query_params, rows, f.limit)
    if more:
        body["volumes_links"] = more
    return body


@router.post("/volumes", status_code=202)
def create_volume(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    request = volume_bodies.parse_create(member(body, "volume"))
    with state.db.session() as session:
        volume = volumes.create(session, who.ctx, request, placement(state))
        view = created_view(volume_view_one(session, state, who.ctx, volume))
    return JSONResponse({"volume": view}, status_code=202)


@router.get("/volumes/{volume_id}")
def show_volume(
    volume_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        volume = volumes.get(session, who.ctx, volume_id)
        return {"volume": volume_view_one(session, state, who.ctx, volume)}


@router.put("/volumes/{volume_id}")
def update_volume(
    volume_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    change = volume_bodies.parse_update(member(body, "volume"))
    with state.db.session() as session:
        volume = volumes.update(session, who.ctx, volume_id, change)
        session.flush()
        return {"volume": created_view(volume_view_one(session, state, who.ctx, volume))}


@router.delete("/volumes/{volume_id}", status_code=202)
def delete_volume(
    volume_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    q = request.query_params
    cascade = bool_param(q, "cascade") or False
    force = bool_param(q, "force") or False
    with state.db.session() as session:
        volumes.delete(session, who.ctx, volume_id, cascade=cascade, force=force)
    return Response(status_code=202)


# --- metadata ----------------------------------------------------------------------------


@router.get("/volumes/{volume_id}/metadata")
def show_metadata(
    volume_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"metadata": dict(volumes.get(session, who.ctx, volume_id).meta or {})}


@router.post("/volumes/{volume_id}/metadata")
@router.put("/volumes/{volume_id}/metadata")
def set_metadata(
    volume_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest("Malformed request body: 'metadata' is a required property")
    with state.db.session() as session:
        meta = volumes.set_metadata(
            session, who.ctx, volume_id, body["metadata"], replace=request.method == "PUT"
        )
    return {"metadata": meta}


@router.get("/volumes/{volume_id}/metadata/{key}")
def show_metadata_item(
    volume_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        meta = volumes.get(session, who.ctx, volume_id).meta or {}
    if key not in meta:
        raise BadRequest(f"Metadata item was not found: {key}") from None
    return {"meta": {key: meta[key]}}


@router.put("/volumes/{volume_id}/metadata/{key}")
def set_metadata_item(
    volume_id: str,
    key: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    item = member(body, "meta")
    if len(item) != 1 or key not in item:
        raise BadRequest("Request body and URI mismatch")
    with state.db.session() as session:
        volumes.set_metadata(session, who.ctx, volume_id, item, replace=False)
    return {"meta": item}


@router.delete("/volumes/{volume_id}/metadata/{key}")
def delete_metadata_item(
    volume_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        volumes.delete_metadata_item(session, who.ctx, volume_id, key)
    return Response(status_code=200)


# --- actions -------------------------------------------------------------------------------


@router.post("/volumes/{volume_id}/action")
def volume_action(
    volume_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid action: the body must name exactly one action.")
    action, args = next(iter(body.items()))
    ctx = who.ctx
    status = 202
    answer: dict[str, Any] | None = None
    with state.db.session() as session:
        volume: m.Volume
        if action == "os-extend":
            volume = volumes.extend(session, ctx, volume_id, args)
        elif action == "os-set_bootable":
            volume = volumes.set_bootable(session, ctx, volume_id, args)
            status = 200
        elif action == "os-update_readonly_flag":
            volume = volumes.set_readonly(session, ctx, volume_id, args)
        elif action == "os-reserve":
            volume = attachments.reserve(session, ctx, volume_id)
        elif action == "os-unreserve":
            volume = attachments.unreserve(session, ctx, volume_id)
        elif action == "os-attach":
            volume = attachments.legacy_attach(session, ctx, volume_id, args)
        elif action in ("os-detach", "os-force_detach"):
            volume = attachments.legacy_detach(session, ctx, volume_id, args)
        elif action == "os-begin_detaching":
            volume = attachments.begin_detaching(session, ctx, volume_id)
        elif action == "os-roll_detaching":
            volume = attachments.roll_detaching(session, ctx, volume_id)
        elif action == "os-reset_status":
            volume = volumes.reset_status(session, ctx, volume_id, args)
        elif action == "os-force_delete":
            volume = volumes.delete(session, ctx, volume_id, force=True)
        elif action == "os-initialize_connection":
            volume = volumes.get(session, ctx, volume_id)
            answer = {"connection_info": connection_info(volume)}
            status = 200
        elif action == "os-volume_upload_image":
            volume, image = uploads.upload(session, ctx, volume_id, args)
            answer = {"os-volume_upload_image": upload_view(session, volume, image)}
            status = 202
        elif action == "os-terminate_connection":
            volume = volumes.get(session, ctx, volume_id)
        else:
            volumes.get(session, ctx, volume_id)
            raise BadRequest(f"There is no such action: {action}")
    # The actions that leave work for the volume's agent woke it (volumes.ask).
    if answer is not None:
        return JSONResponse(answer, status_code=status)
    return Response(status_code=status)


def connection_info(volume: m.Volume) -> dict[str, Any]:
    """What os-initialize_connection tells a caller: the volume is a file on its host."""
    return {
        "driver_volume_type": "local",
        "data": {"volume_id": volume.id, "backend": volume.backend, "access_mode": "rw"},
    }


def upload_view(session: Any, volume: m.Volume, image: m.Image) -> dict[str, Any]:
    volume_type = session.get(m.VolumeType, volume.volume_type_id or "")
    return {
        "id": volume.id,
        "updated_at": cinder_time(volume.updated_at),
        "status": volume.status,
        "display_description": volume.description,
        "size": volume.size,
        "volume_type": (
            {"id": volume_type.id, "name": volume_type.name} if volume_type is not None else None
        ),
        "image_id": image.id,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "image_name": image.name,
        "protected": image.protected,
        "visibility": image.visibility,
    }

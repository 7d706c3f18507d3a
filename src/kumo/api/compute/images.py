"""/compute/v2.1/images: Nova's proxy to the image service (removed by Nova at 2.36, so
served at every microversion kumo speaks), with Nova's shapes: ACTIVE/SAVING statuses,
``minDisk``/``minRam``, ``progress``, ``metadata`` from the image's properties and a
``server`` link on snapshots."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import links
from kumo.api.image.store import image_store
from kumo.api.state import AppState, app_state
from kumo.core.compute import images
from kumo.core.errors import BadRequest, NotFound
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1/images")


def _time(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(state: AppState, image_id: str) -> list[dict[str, str]]:
    return [
        *links(state, "images", image_id),
        {
            "rel": "alternate",
            "type": "application/vnd.openstack.image",
            "href": f"{state.config.public_url}/image/images/{image_id}",
        },
    ]


def _summary(state: AppState, image: m.Image) -> dict[str, Any]:
    return {"id": image.id, "name": image.name, "links": _links(state, image.id)}


def _detail(state: AppState, image: m.Image) -> dict[str, Any]:
    props = image.properties or {}
    view: dict[str, Any] = {
        **_summary(state, image),
        "status": images.STATUS.get(image.status, "UNKNOWN"),
        "progress": images.PROGRESS.get(image.status, 0),
        "minDisk": image.min_disk or 0,
        "minRam": image.min_ram or 0,
        "metadata": dict(props),
        "created": _time(image.created_at),
        "updated": _time(image.updated_at),
        "OS-EXT-IMG-SIZE:size": image.size,
    }
    server_id = props.get("instance_uuid")
    if server_id:
        view["server"] = {"id": server_id, "links": links(state, "servers", server_id)}
    if "auto_disk_config" in props:
        auto = str(props["auto_disk_config"]).lower() in ("true", "1", "yes", "on")
        view["OS-DCF:diskConfig"] = "AUTO" if auto else "MANUAL"
    return view


def _list(request: Request, who: Caller, state: AppState, path: str, detail: bool) -> Any:
    f = images.parse_filters(request.query_params)
    with state.db.session() as session:
        rows = images.list_images(session, who.ctx, f)
        page = [(_detail if detail else _summary)(state, i) for i in rows]
    result: dict[str, Any] = {"images": page}
    if f.limit and rows and len(rows) == f.limit:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        params.append(("marker", rows[-1].id))
        href = f"{state.config.public_url}/compute/v2.1/{path}?{urlencode(params)}"
        result["images_links"] = [{"rel": "next", "href": href}]
    return result


@router.get("")
def list_images(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    result: dict[str, Any] = _list(request, who, state, "images", False)
    return result


@router.get("/detail")
def list_images_detail(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    result: dict[str, Any] = _list(request, who, state, "images/detail", True)
    return result


@router.get("/", include_in_schema=False)
@router.delete("/", include_in_schema=False)
def empty_image_id(who: Caller = Depends(caller)) -> None:
    # An empty id names no image (Nova: 404), not the collection behind a redirect.
    raise NotFound("Image not found.")


@router.get("/{image_id}")
def show_image(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"image": _detail(state, images.get(session, who.ctx, image_id))}


@router.delete("/{image_id}", status_code=204)
def delete_image(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        image = images.delete(session, who.ctx, image_id)
    # Row first, data after, as the image API does: a crash leaves an orphan file, never a
    # live image without data.
    image_store(state).delete(image.id)
    return Response(status_code=204)


def _metadata_member(body: Any) -> Any:
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest(
            "Invalid input for field/attribute metadata. 'metadata' is a required property"
        )
    return body["metadata"]


@router.get("/{image_id}/metadata")
def show_metadata(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"metadata": images.metadata(session, who.ctx, image_id)}


@router.post("/{image_id}/metadata")
def merge_metadata(
    image_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    items = _metadata_member(body)
    with state.db.session() as session:
        return {"metadata": images.set_metadata(session, who.ctx, image_id, items, False)}


@router.put("/{image_id}/metadata")
def replace_metadata(
    image_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    items = _metadata_member(body)
    with state.db.session() as session:
        return {"metadata": images.set_metadata(session, who.ctx, image_id, items, True)}


@router.get("/{image_id}/metadata/{key}")
def show_metadata_item(
    image_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"meta": {key: images.metadata_item(session, who.ctx, image_id, key)}}


@router.put("/{image_id}/metadata/{key}")
def set_metadata_item(
    image_id: str,
    key: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    value = meta_value(body, key)
    with state.db.session() as session:
        return {"meta": images.set_metadata_item(session, who.ctx, image_id, key, value)}


def meta_value(body: Any, key: str) -> Any:
    """The value of ``{"meta": {key: value}}``: one key, named the same as in the URL."""
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict) or not meta:
        raise BadRequest("Malformed request body: 'meta' is a required object.")
    if len(meta) > 1:
        raise BadRequest("Request body contains too many items")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    return meta[key]


@router.delete("/{image_id}/metadata/{key}", status_code=204)
def delete_metadata_item(
    image_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        images.delete_metadata_item(session, who.ctx, image_id, key)
    return Response(status_code=204)

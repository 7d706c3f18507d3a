"""/image/v2/images: metadata, JSON-patch updates, delete, (de)activate, tags, members."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.image import views
from kumo.api.image.store import image_store
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, KumoError, NotFound
from kumo.core.images import fields, images, members, query
from kumo.core.policy import enforce

router = APIRouter(prefix="/image/v2")

PATCH_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)


class UnsupportedMediaType(KumoError):
    status = 415
    title = "Unsupported Media Type"


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("Body expected in request: a JSON object.")
    return body


@router.get("/images")
def list_images(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    q = query.parse(request.query_params.multi_items())
    with state.db.session() as session:
        rows, more = images.list_images(session, who.ctx, q)
        page = [views.image(i) for i in rows]
    result: dict[str, Any] = {"images": page, "first": "/v2/images", "schema": "/v2/schemas/images"}
    if more and rows:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        params.append(("marker", rows[-1].id))
        result["next"] = "/v2/images?" + urlencode(params)
    return result


def parse_create(body: dict[str, Any]) -> images.ImageCreate:
    """Glance's image schema: ``id`` (a UUID, made when absent), the base attributes and
    extra properties, each checked by core's fields rules."""
    values: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    image_id = body.get("id")
    for key, value in body.items():
        if key == "id":
            continue
        fields.check_key(key)
        if key in fields.BASE:
            values[key] = fields.base_value(key, value)
        else:
            properties[key] = fields.property_value(key, value)
    fields.check_property_count(properties)
    if image_id is None:
        image_id = str(uuid.uuid4())
    elif not isinstance(image_id, str) or not fields.is_uuid(image_id):
        raise BadRequest(
            f"Provided object does not match schema 'image': {image_id!r} is not "
            "a valid UUID (attribute 'id')."
        )
    else:
        image_id = str(uuid.UUID(image_id))
    return images.ImageCreate(id=image_id, base=values, properties=properties)


@router.post("/images", status_code=201)
def create_image(
    response: Response,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    # The policy first (403 before any 400), as when core parsed the body.
    enforce(who.ctx, "image:add_image", {"project_id": who.ctx.project_id})
    request = parse_create(_object(body))
    with state.db.session() as session:
        image = images.create_image(session, who.ctx, request)
        view = views.image(image)
    response.headers["Location"] = f"{state.config.public_url}/image/v2/images/{image.id}"
    return view


@router.get("/images/", include_in_schema=False)
@router.delete("/images/", include_in_schema=False)
def empty_image_id(who: Caller = Depends(caller)) -> None:
    # An empty id is a missing image (Glance 404), not the collection behind a redirect.
    raise NotFound("No image found with ID ''")


@router.get("/images/{image_id}")
def show_image(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return views.image(images.get_image(session, who.ctx, image_id))


@router.get("/images/{image_id}/tasks")
def show_image_tasks(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Glance 2.12: the image's asynchronous tasks (import, location). kumo runs none (no
    interoperable import yet), so a visible image has an empty list; clients such as
    Tempest wait on this list after a snapshot or backup."""
    with state.db.session() as session:
        images.get_image(session, who.ctx, image_id)
    return {"tasks": []}


@router.patch("/images/{image_id}")
def update_image(
    image_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in PATCH_TYPES:
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {content_type or '(none)'}; use one of "
            + ", ".join(PATCH_TYPES)
        )
    with state.db.session() as session:
        return views.image(images.update_image(session, who.ctx, image_id, body))


@router.delete("/images/{image_id}", status_code=204)
def delete_image(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        image = images.delete_image(session, who.ctx, image_id)
    # The row is marked deleted first: a crash here leaves an orphan file, never a live
    # image without its data.
    image_store(state).delete(image.id)
    return Response(status_code=204)


@router.post("/images/{image_id}/actions/deactivate", status_code=204)
def deactivate(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        images.set_active(session, who.ctx, image_id, active=False)
    return Response(status_code=204)


@router.post("/images/{image_id}/actions/reactivate", status_code=204)
def reactivate(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        images.set_active(session, who.ctx, image_id, active=True)
    return Response(status_code=204)


@router.put("/images/{image_id}/tags/{tag}", status_code=204)
def add_tag(
    image_id: str, tag: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        images.add_tag(session, who.ctx, image_id, tag)
    return Response(status_code=204)


@router.delete("/images/{image_id}/tags/{tag}", status_code=204)
def delete_tag(
    image_id: str, tag: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        images.delete_tag(session, who.ctx, image_id, tag)
    return Response(status_code=204)


# Members --------------------------------------------------------------------------------


@router.get("/images/{image_id}/members")
def list_members(
    image_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        rows = members.list_members(session, who.ctx, image_id)
        return {"members": [views.member(r) for r in rows], "schema": "/v2/schemas/members"}


@router.post("/images/{image_id}/members")
def add_member(
    image_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    member_id = _object(body).get("member")
    if not isinstance(member_id, str) or not member_id or len(member_id) > 255:
        raise BadRequest("Member to be added not specified")
    with state.db.session() as session:
        return views.member(members.add_member(session, who.ctx, image_id, member_id))


@router.get("/images/{image_id}/members/{member_id}")
def show_member(
    image_id: str,
    member_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        return views.member(members.get_member(session, who.ctx, image_id, member_id))


@router.put("/images/{image_id}/members/{member_id}")
def update_member(
    image_id: str,
    member_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    status = _object(body).get("status")
    with state.db.session() as session:
        row = members.update_member(session, who.ctx, image_id, member_id, status)
        return views.member(row)


@router.delete("/images/{image_id}/members/{member_id}", status_code=204)
def delete_member(
    image_id: str,
    member_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "image:get_members")
    with state.db.session() as session:
        members.delete_member(session, who.ctx, image_id, member_id)
    return Response(status_code=204)

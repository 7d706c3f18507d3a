"""Image records: create, show, list, JSON-patch update, delete, (de)activate, tags.

Who sees what (Glance's rules): an admin sees every image; others see their own project's
images, public and community ones, and shared ones their project is a member of (any member
status when asked by id, accepted ones in the default listing). An image that is not visible
is 404, never 403, so its existence does not leak; a visible image the caller may not change
is 403.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.images import fields
from kumo.core.images.query import ListQuery
from kumo.core.policy import Context, allowed, enforce
from kumo.db import models as m
from kumo.db.types import utcnow

LIVE = m.Image.status != "deleted"


def not_found(image_id: str) -> NotFound:
    return NotFound(f"No image found with ID {image_id}")


def _is_member(session: Session, image_id: str, project_id: str | None) -> bool:
    if project_id is None:
        return False
    return session.get(m.ImageMember, (image_id, project_id)) is not None


def visible(session: Session, ctx: Context, image: m.Image) -> bool:
    if image.status == "deleted":
        return False
    if ctx.is_admin or (ctx.project_id is not None and image.owner == ctx.project_id):
        return True
    if image.visibility in ("public", "community"):
        return True
    return image.visibility == "shared" and _is_member(session, image.id, ctx.project_id)


def get_image(session: Session, ctx: Context, image_id: str, tags: bool = True) -> m.Image:
    """The image if the caller may see it; a name or malformed id is simply not found.
    ``tags=False``: its tags are read only if something asks for them (a server create
    needs none, and saves a query)."""
    enforce(ctx, "image:get_image")
    options = () if tags else (lazyload(m.Image.tag_rows),)
    image = session.get(m.Image, image_id, options=options) if fields.is_uuid(image_id) else None
    if image is None or not visible(session, ctx, image):
        raise not_found(image_id)
    return image


def owned(session: Session, ctx: Context, image_id: str, action: str) -> m.Image:
    """A visible image on which the caller may perform ``action`` (the owner's rules)."""
    image = get_image(session, ctx, image_id)
    if not allowed(ctx, action, {"project_id": image.owner}):
        raise Forbidden(f"You are not authorized to complete {action.split(':')[1]} action.")
    return image


def _check_visibility_change(ctx: Context, visibility: str) -> None:
    if visibility == "public":
        enforce(ctx, "image:publicize_image")


def _check_owner(ctx: Context, owner: str | None) -> None:
    if owner != ctx.project_id:
        enforce(ctx, "image:set_owner")


@dataclass(frozen=True)
class ImageCreate:
    """An image record to create, its attributes checked by the API
    (kumo.api.image.images.parse_create, with core's fields checks): ``base`` the base
    attributes given (fields.BASE), ``properties`` the extra ones. Core checks what the
    caller may do with them (visibility, owner) and that the id is free."""

    id: str
    base: dict[str, Any] = field(default_factory=dict)
    properties: dict[str, Any] = field(default_factory=dict)


def create_image(session: Session, ctx: Context, request: ImageCreate) -> m.Image:
    enforce(ctx, "image:add_image", {"project_id": ctx.project_id})
    image_id, values, properties = request.id, request.base, request.properties
    visibility = values.get("visibility", "shared")
    _check_visibility_change(ctx, visibility)
    owner = values.get("owner", ctx.project_id)
    _check_owner(ctx, owner)
    now = utcnow()
    image = m.Image(
        id=image_id,
        name=values.get("name"),
        owner=owner,
        status="queued",
        visibility=visibility,
        protected=values.get("protected", False),
        os_hidden=values.get("os_hidden", False),
        disk_format=values.get("disk_format"),
        container_format=values.get("container_format"),
        min_disk=values.get("min_disk", 0),
        min_ram=values.get("min_ram", 0),
        properties={k: v for k, v in properties.items() if v is not None},
        locations=[],
        created_at=now,
        updated_at=now,
    )
    image.tag_rows = [m.ImageTag(tag=t) for t in values.get("tags", [])]
    session.add(image)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"Image with identifier {image_id} already exists!") from exc
    return image


# Listing --------------------------------------------------------------------------------


def _member_ids(ctx: Context, statuses: tuple[str, ...]) -> Any:
    return select(m.ImageMember.image_id).where(
        m.ImageMember.member == ctx.project_id, m.ImageMember.status.in_(statuses)
    )


def _visibility_clause(ctx: Context, q: ListQuery) -> Any:
    statuses = fields.MEMBER_STATUSES if q.member_status == "all" else (q.member_status,)
    own = m.Image.owner == ctx.project_id
    shared = and_(m.Image.visibility == "shared", m.Image.id.in_(_member_ids(ctx, statuses)))
    vis = m.Image.visibility
    if ctx.is_admin:
        if q.visibility in (None, "all"):
            return None
        return vis == q.visibility
    if q.visibility is None:
        return or_(own, vis == "public", shared)
    if q.visibility == "all":
        return or_(own, vis.in_(("public", "community")), shared)
    if q.visibility in ("public", "community"):
        return vis == q.visibility
    if q.visibility == "private":
        return and_(vis == "private", own)
    return or_(and_(vis == "shared", own), shared)


def list_images(session: Session, ctx: Context, q: ListQuery) -> tuple[list[m.Image], bool]:
    """One page of visible images in the requested order, and whether more follow."""
    enforce(ctx, "image:get_images")
    stmt = select(m.Image).where(LIVE)
    clause = _visibility_clause(ctx, q)
    if clause is not None:
        stmt = stmt.where(clause)
    if q.os_hidden is not None:
        stmt = stmt.where(m.Image.os_hidden == q.os_hidden)
    for column, values in q.equal.items():
        stmt = stmt.where(getattr(m.Image, column).in_(values))
    if q.size_min is not None:
        stmt = stmt.where(m.Image.size >= q.size_min)
    if q.size_max is not None:
        stmt = stmt.where(m.Image.size <= q.size_max)
    for t in q.tags:
        stmt = stmt.where(m.Image.id.in_(select(m.ImageTag.image_id).where(m.ImageTag.tag == t)))
    rows = [
        image
        for image in session.scalars(stmt)
        if all(image.properties.get(k) == v for k, v in q.properties.items())
    ]
    rows.sort(key=q.sort_key_of)
    if q.marker is not None:
        ids = [image.id for image in rows]
        if q.marker not in ids:
            raise BadRequest(f"Invalid marker. Image {q.marker} could not be found.")
        rows = rows[ids.index(q.marker) + 1 :]
    return rows[: q.limit], len(rows) > q.limit


# Update ---------------------------------------------------------------------------------


def _pointer(path: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    parts = path[1:].split("/")
    if len(parts) != 1:
        raise BadRequest(f"Invalid JSON pointer for this resource: '{path}'")
    return parts[0].replace("~1", "/").replace("~0", "~")


def normalize_patch(ops: Any) -> list[tuple[str, str, Any]]:
    """(op, attribute, value) triples from either Glance patch dialect.

    v2.1 (``application/openstack-images-v2.1-json-patch``) is RFC 6902:
    ``{"op": "replace", "path": "/name", "value": ...}``; v2.0, which tempest sends, names
    the operation as the key: ``{"replace": "/name", "value": ...}``.
    """
    if not isinstance(ops, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    result = []
    for op in ops:
        if not isinstance(op, dict):
            raise BadRequest("Operations must be JSON objects.")
        if "op" in op:
            name, path = op["op"], op.get("path")
        else:
            found = [k for k in ("add", "replace", "remove") if k in op]
            if len(found) != 1:
                raise BadRequest(
                    'Operation objects must contain exactly one of "add", "remove", or "replace".'
                )
            name, path = found[0], op[found[0]]
        if name not in ("add", "replace", "remove"):
            raise BadRequest(f"Invalid operation: `{name}`.")
        if name != "remove" and "value" not in op:
            raise BadRequest(f'Operation "{name}" requires a member named "value".')
        result.append((name, _pointer(path), op.get("value")))
    return result


def _apply_base(ctx: Context, image: m.Image, op: str, key: str, value: Any) -> None:
    if op == "remove":
        raise Forbidden(f"Properties '{key}' cannot be removed.")
    value = fields.base_value(key, value)
    if key == "visibility" and value != image.visibility:
        _check_visibility_change(ctx, value)
    elif key == "owner":
        _check_owner(ctx, value)
    elif key in ("disk_format", "container_format") and image.status != "queued":
        raise Forbidden(f"Attribute {key} can be only replaced for a queued image.")
    if key == "tags":
        image.tag_rows = [m.ImageTag(image_id=image.id, tag=t) for t in value]
    else:
        setattr(image, key, value)


def _apply_property(properties: dict[str, Any], op: str, key: str, value: Any) -> None:
    present = key in properties
    if op == "add" and present:
        raise Conflict(f"Property {key} already present.")
    if op in ("replace", "remove") and not present:
        raise Conflict(f"Property {key} does not exist.")
    if op == "remove":
        del properties[key]
        return
    checked = fields.property_value(key, value)
    if checked is None:
        properties.pop(key, None)
    else:
        properties[key] = checked


def update_image(session: Session, ctx: Context, image_id: str, ops: Any) -> m.Image:
    changes = normalize_patch(ops)
    image = owned(session, ctx, image_id, "image:modify_image")
    properties = dict(image.properties or {})
    for op, key, value in changes:
        fields.check_key(key)
        if key in fields.BASE:
            _apply_base(ctx, image, op, key, value)
        else:
            _apply_property(properties, op, key, value)
    fields.check_property_count(properties)
    image.properties = properties
    image.updated_at = utcnow()
    session.flush()
    return image


# Delete, deactivate, tags ---------------------------------------------------------------


def delete_image(session: Session, ctx: Context, image_id: str) -> m.Image:
    """Mark the image deleted (the row stays for audit); the caller removes its data."""
    image = owned(session, ctx, image_id, "image:delete_image")
    if image.protected:
        raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
    image.status = "deleted"
    image.deleted_at = image.updated_at = utcnow()
    session.flush()
    return image


def set_active(session: Session, ctx: Context, image_id: str, active: bool) -> m.Image:
    """Deactivate (data download refused to non-admins) or reactivate an image."""
    action = "image:reactivate" if active else "image:deactivate"
    image = owned(session, ctx, image_id, action)
    current, wanted = ("deactivated", "active") if active else ("active", "deactivated")
    if image.status == wanted:
        return image
    if image.status != current:
        verb = "reactivate" if active else "deactivate"
        raise BadRequest(f"Not allowed to {verb} image in status '{image.status}'")
    image.status = wanted
    image.updated_at = utcnow()
    session.flush()
    return image


def add_tag(session: Session, ctx: Context, image_id: str, tag: str) -> None:
    image = owned(session, ctx, image_id, "image:modify_image")
    tag = fields.tag(tag)
    if tag not in image.tags:
        fields.tags([*image.tags, tag])
        image.tag_rows.append(m.ImageTag(image_id=image.id, tag=tag))
        image.updated_at = utcnow()
    session.flush()


def delete_tag(session: Session, ctx: Context, image_id: str, tag: str) -> None:
    image = owned(session, ctx, image_id, "image:modify_image")
    rows = [row for row in image.tag_rows if row.tag == tag]
    if not rows:
        raise NotFound(f"Tag {tag} not found.")
    image.tag_rows.remove(rows[0])
    image.updated_at = utcnow()
    session.flush()

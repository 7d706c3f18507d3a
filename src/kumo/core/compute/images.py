"""Nova's image proxy (``/compute/v2.1/images``, served up to microversion 2.35): a view of
the image service, with Nova's filters and Nova's metadata rules.

Nothing here stores anything of its own: reads and writes go through the image service core
(kumo.core.images), so who may see or change an image is decided in one place (a private
image of another project is 404, a visible image the caller does not own is 403).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kumo.core.compute import quotas
from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.images import fields, images
from kumo.core.images.query import ListQuery
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

# Nova's names for Glance's statuses, and how far along Nova says each one is.
STATUS = {
    "active": "ACTIVE",
    "queued": "SAVING",
    "saving": "SAVING",
    "uploading": "SAVING",
    "importing": "SAVING",
    "deleted": "DELETED",
    "pending_delete": "DELETED",
    "killed": "ERROR",
}
PROGRESS = {"queued": 25, "saving": 50, "uploading": 50, "importing": 50, "active": 100}
# Everything, when the client asks for no limit: Nova's glance client pages to the end.
NO_LIMIT = 2**31
META_MAX = 255


@dataclass
class Filters:
    """The filters Nova's image list accepts, already checked."""

    name: str | None = None
    status: str | None = None
    changes_since: dt.datetime | None = None
    server: str | None = None
    image_type: str | None = None
    min_ram: int | None = None
    min_disk: int | None = None
    limit: int | None = None
    marker: str | None = None


def _int(key: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid input for query parameters {key}. Value: {raw}.") from None
    if value < 0:
        raise BadRequest(f"Invalid input for query parameters {key}. Value: {raw}.")
    return value


def _time(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid changes-since value: {raw}") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def parse_filters(params: Mapping[str, str]) -> Filters:
    """Nova's filters: ``server`` may be a server's id or its URL (the id is its last part),
    ``status`` is Nova's name (ACTIVE) sent on lower-cased, ``minRam``/``minDisk`` are
    lower bounds; unknown parameters are ignored as Nova ignores them."""
    f = Filters()
    f.name = params.get("name")
    if "status" in params:
        status = params["status"].lower()
        if status not in fields.STATUSES:
            raise BadRequest(f"Invalid status value: {params['status']}")
        f.status = status
    if "changes-since" in params:
        f.changes_since = _time(params["changes-since"])
    if "server" in params:
        f.server = params["server"].rstrip("/").rsplit("/", 1)[-1]
    f.image_type = params.get("type")
    if "minRam" in params:
        f.min_ram = _int("minRam", params["minRam"])
    if "minDisk" in params:
        f.min_disk = _int("minDisk", params["minDisk"])
    if "limit" in params:
        f.limit = _int("limit", params["limit"])
    f.marker = params.get("marker")
    return f


def _matches(image: m.Image, f: Filters) -> bool:
    props = image.properties or {}
    return (
        (f.changes_since is None or image.updated_at >= f.changes_since)
        and (f.server is None or props.get("instance_uuid") == f.server)
        and (f.image_type is None or props.get("image_type") == f.image_type)
        and (f.min_ram is None or (image.min_ram or 0) >= f.min_ram)
        and (f.min_disk is None or (image.min_disk or 0) >= f.min_disk)
    )


def list_images(session: Session, ctx: Context, f: Filters) -> list[m.Image]:
    """The images the caller sees in the image service's default listing (newest first),
    filtered, then paged by marker and limit."""
    q = ListQuery(limit=NO_LIMIT)
    if f.name is not None:
        q.equal["name"] = [f.name]
    if f.status is not None:
        q.equal["status"] = [f.status]
    rows, _ = images.list_images(session, ctx, q)
    rows = [image for image in rows if _matches(image, f)]
    if f.marker is not None:
        ids = [image.id for image in rows]
        if f.marker not in ids:
            raise BadRequest(f"marker [{f.marker}] not found")
        rows = rows[ids.index(f.marker) + 1 :]
    return rows if f.limit is None else rows[: f.limit]


def get(session: Session, ctx: Context, image_id: str) -> m.Image:
    """A visible image; Nova's message for the rest."""
    try:
        return images.get_image(session, ctx, image_id)
    except NotFound:
        raise NotFound("Image not found.") from None


def delete(session: Session, ctx: Context, image_id: str) -> m.Image:
    """Delete through the image service's rules (owner only, not protected); the caller
    removes the data from the image store."""
    get(session, ctx, image_id)
    return images.delete_image(session, ctx, image_id)


# Metadata (the image's extra properties) ------------------------------------------------


def _checked(items: Any) -> dict[str, str]:
    """Nova's metadata schema: an object of string values, keys 1-255 characters, values at
    most 255; and no key that names one of the image's own attributes."""
    if not isinstance(items, dict):
        raise BadRequest("Invalid input for field/attribute metadata. Value must be an object.")
    for key, value in items.items():
        if not 1 <= len(key) <= META_MAX:
            raise BadRequest(
                f"Invalid input for field/attribute metadata. Key '{key[:40]}' must be 1 to "
                f"{META_MAX} characters."
            )
        if not isinstance(value, str) or len(value) > META_MAX:
            raise BadRequest(
                f"Invalid input for field/attribute {key}. Value must be a string of at most "
                f"{META_MAX} characters."
            )
        if key in fields.BASE or key in fields.READ_ONLY or key in fields.RESERVED:
            raise BadRequest(f"Invalid metadata key {key}: an image attribute of that name exists.")
    return dict(items)


def _check_quota(session: Session, image: m.Image, properties: dict[str, Any]) -> None:
    if image.owner is None:
        return
    limit = quotas.limits(session, image.owner)["metadata_items"]
    if limit >= 0 and len(properties) > limit:
        raise Forbidden("Image metadata limit exceeded")


def _save(session: Session, ctx: Context, image_id: str, properties: dict[str, Any]) -> m.Image:
    image = images.owned(session, ctx, image_id, "image:modify_image")
    _check_quota(session, image, properties)
    image.properties = properties
    image.updated_at = utcnow()
    session.flush()
    return image


def metadata(session: Session, ctx: Context, image_id: str) -> dict[str, Any]:
    return dict(get(session, ctx, image_id).properties or {})


def metadata_item(session: Session, ctx: Context, image_id: str, key: str) -> Any:
    props = metadata(session, ctx, image_id)
    if key not in props:
        raise NotFound("Image not found.")
    return props[key]


def set_metadata(
    session: Session, ctx: Context, image_id: str, items: Any, replace: bool
) -> dict[str, Any]:
    """Merge (POST) or replace (PUT) the image's metadata; the whole metadata after."""
    image = get(session, ctx, image_id)
    new = _checked(items)
    properties = new if replace else {**(image.properties or {}), **new}
    return dict(_save(session, ctx, image_id, properties).properties)


def set_metadata_item(
    session: Session, ctx: Context, image_id: str, key: str, value: Any
) -> dict[str, Any]:
    """One key; the API checked that the body names that key alone
    (kumo.api.compute.images.meta_value)."""
    image = get(session, ctx, image_id)
    item = _checked({key: value})
    _save(session, ctx, image_id, {**(image.properties or {}), **item})
    return item


def delete_metadata_item(session: Session, ctx: Context, image_id: str, key: str) -> None:
    image = get(session, ctx, image_id)
    properties = dict(image.properties or {})
    if key not in properties:
        raise NotFound("Invalid metadata key")
    del properties[key]
    _save(session, ctx, image_id, properties)

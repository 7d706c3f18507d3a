"""The image data state machine: queued -> saving -> active, and back to queued on failure.

The API marks the image ``saving`` (in one short transaction), streams the data to the store
outside any transaction, then records the result: ``active`` with size, checksums and virtual
size, or ``queued`` again with nothing kept. An image deleted while its data was arriving
ends deleted, and the caller discards the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, KumoError
from kumo.core.images.images import get_image, owned
from kumo.core.policy import Context, enforce
from kumo.db import models as m
from kumo.db.types import utcnow

HASH_ALGO = "sha512"


class Gone(KumoError):
    status = 410
    title = "Gone"


@dataclass(frozen=True)
class StoredData:
    size: int
    checksum: str  # md5, hex
    os_hash_value: str  # sha512, hex
    virtual_size: int | None


def begin_upload(session: Session, ctx: Context, image_id: str) -> m.Image:
    image = owned(session, ctx, image_id, "image:upload_image")
    if image.status != "queued":
        raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
    if image.disk_format is None or image.container_format is None:
        raise BadRequest(
            "Properties disk_format, container_format must be set prior to saving data."
        )
    image.status = "saving"
    image.updated_at = utcnow()
    session.flush()
    return image


def abort_upload(session: Session, image_id: str) -> None:
    """Back to queued after a failed upload (nothing of the data is kept)."""
    image = session.get(m.Image, image_id)
    if image is not None and image.status == "saving":
        image.status = "queued"
        image.updated_at = utcnow()


def finish_upload(session: Session, image_id: str, stored: StoredData) -> m.Image:
    image = session.get(m.Image, image_id)
    if image is None or image.status != "saving":
        raise Gone("Image deleted during upload; its data was discarded.")
    image.status = "active"
    image.size = stored.size
    image.checksum = stored.checksum
    image.os_hash_algo = HASH_ALGO
    image.os_hash_value = stored.os_hash_value
    image.virtual_size = stored.virtual_size
    image.updated_at = utcnow()
    session.flush()
    return image


def for_download(session: Session, ctx: Context, image_id: str) -> m.Image | None:
    """The image whose data may be read, or None when it has no data yet (HTTP 204)."""
    image = get_image(session, ctx, image_id)
    enforce(ctx, "image:download_image", {"project_id": image.owner})
    if image.status == "deactivated" and not ctx.is_admin:
        raise Forbidden(
            "The requested image has been deactivated. Image data download is forbidden."
        )
    if image.status not in ("active", "deactivated") or image.size is None:
        return None
    return image

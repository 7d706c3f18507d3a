"""Upload a volume to an image (Cinder's os-volume_upload_image).

The request makes a queued image, owned by the volume's project, and puts the volume in
``uploading`` for its agent: the agent copies the volume into an image file of the asked
format and streams it into the image through the agent API (checked like any upload), then
reports; the volume is then available (or in-use) again. A failed upload deletes the image.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, NotFound
from kumo.core.params import body_bool
from kumo.core.policy import Context
from kumo.core.volume import volumes
from kumo.db import models as m
from kumo.db.types import utcnow

DISK_FORMATS = ("raw", "qcow2")
CONTAINER_FORMATS = ("bare",)
VISIBILITIES = ("public", "private", "shared", "community")


def upload(session: Session, ctx: Context, volume_id: str, args: Any) -> tuple[m.Volume, m.Image]:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute os-volume_upload_image.")
    name = args.get("image_name")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise BadRequest("Invalid input for field/attribute image_name: a name is required.")
    disk_format = args.get("disk_format", "raw")
    if disk_format not in DISK_FORMATS:
        raise BadRequest(
            f"Invalid disk-format '{disk_format}' specified. Allowed disk-formats are "
            f"{', '.join(DISK_FORMATS)}."
        )
    container_format = args.get("container_format", "bare")
    if container_format not in CONTAINER_FORMATS:
        raise BadRequest(f"Invalid container-format '{container_format}': only bare is allowed.")
    force = body_bool(args.get("force", False), "force")
    visibility = args.get("visibility", "private")
    if visibility not in VISIBILITIES:
        raise BadRequest(f"Invalid visibility '{visibility}'.")
    if visibility == "public" and not ctx.is_admin:
        raise BadRequest("Only an administrator may upload a volume to a public image.")
    protected = body_bool(args.get("protected", False), "protected")
    volume = volumes.get(session, ctx, volume_id)
    allowed = ("available", "in-use") if force else ("available",)
    if volume.status not in allowed:
        raise volumes.invalid_status(volume, " or ".join(allowed), "upload it to an image")
    now = utcnow()
    properties = {
        k: v
        for k, v in (volume.image_meta or {}).items()
        if k in ("kernel_id", "ramdisk_id", "os_command_line", "os_distro", "architecture")
    }
    image = m.Image(
        id=str(uuid.uuid4()),
        name=name,
        owner=volume.project_id,
        status="queued",
        visibility=visibility,
        protected=protected,
        os_hidden=False,
        disk_format=disk_format,
        container_format=container_format,
        min_disk=volume.size,
        min_ram=0,
        properties=properties,
        locations=[],
        created_at=now,
        updated_at=now,
    )
    image.tag_rows = []
    session.add(image)
    volume.upload_image_id = image.id
    volumes.ask(volume, "uploading")
    session.flush()
    return volume, image


def begin_agent_upload(session: Session, image_id: str) -> m.Image:
    """An agent may stream data only into the image an upload is waiting for."""
    image = session.get(m.Image, image_id)
    volume = waiting_volume(session, image_id)
    if image is None or volume is None:
        raise NotFound(f"Image {image_id} is not a volume upload in progress.")
    if image.status != "queued":
        raise BadRequest(f"Image status transition from {image.status} to saving is not allowed")
    image.status = "saving"
    image.updated_at = utcnow()
    return image


def waiting_volume(session: Session, image_id: str) -> m.Volume | None:
    return session.scalars(
        select(m.Volume).where(
            m.Volume.upload_image_id == image_id,
            m.Volume.status == "uploading",
            m.Volume.deleted.is_(False),
        )
    ).first()


def finished(session: Session, volume: m.Volume) -> None:
    """The agent is done with the upload: the volume is back in service; an image the
    agent did not fill is deleted (Cinder leaves no half-made image behind)."""
    image = session.get(m.Image, volume.upload_image_id or "")
    # Not filled (failed, or done without data): deleted. A filled one stays even when the
    # report says error (the upload went through; only the report afterwards failed).
    if image is not None and image.status in ("queued", "saving"):
        image.status = "deleted"
        image.deleted_at = image.updated_at = utcnow()
    volume.upload_image_id = None
    volume.status = "in-use" if volumes.live_attachments(session, volume.id) else "available"

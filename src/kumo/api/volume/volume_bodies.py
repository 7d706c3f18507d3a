"""The bodies of a volume create and update as Cinder's schemas check them (``name`` or
the v1 ``display_name``, likewise the description; ``imageRef`` or ``image_id``), turned
into core's typed requests (kumo.core.volume.volumes.VolumeCreate, VolumeUpdate): core
sees values only, and checks what needs the database (sources, type, quota)."""

from __future__ import annotations

from typing import Any

from kumo.core.errors import BadRequest
from kumo.core.params import body_bool
from kumo.core.volume.volumes import (
    VolumeCreate,
    VolumeUpdate,
    check_text,
    metadata_of,
    size_of,
)

CREATE_KEYS = {
    "name", "display_name", "description", "display_description", "size",
    "availability_zone", "source_volid", "snapshot_id", "imageRef", "image_id",
    "volume_type", "metadata", "multiattach", "consistencygroup_id", "backup_id", "group_id",
    "scheduler_hints",
}  # fmt: skip
UPDATE_KEYS = {"name", "display_name", "description", "display_description", "metadata"}


def _no_unknown(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute volume. Additional properties are not allowed "
            f"({', '.join(sorted(unknown))} unexpected)"
        )


def parse_create(body: dict[str, Any]) -> VolumeCreate:
    """``body`` is the request's ``volume`` member; checks in Cinder's order."""
    _no_unknown(body, CREATE_KEYS)
    if body.get("backup_id"):
        raise BadRequest("Creating a volume from a backup is not supported by this cloud.")
    if body.get("consistencygroup_id") or body.get("group_id"):
        raise BadRequest("Consistency groups and groups are not supported by this cloud.")
    name = check_text(body.get("name", body.get("display_name")), "name")
    description = check_text(
        body.get("description", body.get("display_description")), "description"
    )
    meta = metadata_of(body.get("metadata"))
    multiattach = body_bool(body.get("multiattach", False), "multiattach")
    zone = body.get("availability_zone")
    if zone is not None and (not isinstance(zone, str) or zone not in ("", "nova")):
        raise BadRequest(f"Invalid input received: Availability zone '{zone}' is invalid.")
    sources = [k for k in ("snapshot_id", "source_volid", "imageRef") if body.get(k)]
    image_ref = body.get("imageRef") or body.get("image_id")
    if image_ref and "imageRef" not in sources:
        sources.append("imageRef")
    if len(sources) > 1:
        raise BadRequest(
            "Invalid input received: only one of snapshot_id, source_volid and imageRef "
            "may be given."
        )
    return VolumeCreate(
        name=name,
        description=description,
        size=size_of(body["size"]) if body.get("size") is not None else None,
        snapshot_id=str(body["snapshot_id"]) if body.get("snapshot_id") else None,
        source_volid=str(body["source_volid"]) if body.get("source_volid") else None,
        image_ref=str(image_ref) if image_ref else None,
        volume_type=str(body["volume_type"]) if body.get("volume_type") else None,
        multiattach=multiattach,
        meta=meta,
    )


def parse_update(body: Any) -> VolumeUpdate:
    """Only the fields the body names change (a null clears a name or description)."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute volume: an object expected.")
    _no_unknown(body, UPDATE_KEYS)
    texts: dict[str, str | None] = {}
    for key, legacy in (("name", "display_name"), ("description", "display_description")):
        if key in body or legacy in body:
            texts[key] = check_text(body.get(key, body.get(legacy)), key)
    meta = metadata_of(body["metadata"]) if "metadata" in body else None
    return VolumeUpdate(texts=texts, meta=meta)

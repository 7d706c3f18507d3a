"""The bodies of a snapshot create and update as Cinder's schemas check them (``name`` or
the v1 ``display_name``, likewise the description), turned into core's typed requests
(kumo.core.volume.snapshots.SnapshotCreate, SnapshotUpdate): core sees values only."""

from __future__ import annotations

from typing import Any

from kumo.core.errors import BadRequest
from kumo.core.params import body_bool
from kumo.core.volume import volumes
from kumo.core.volume.snapshots import SnapshotCreate, SnapshotUpdate

CREATE_KEYS = {
    "volume_id", "force", "name", "display_name", "description", "display_description",
    "metadata",
}  # fmt: skip


def _text(key: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > 255):
        raise BadRequest(f"Invalid input for field/attribute {key}.")
    return value


def parse_create(body: Any) -> SnapshotCreate:
    """``body`` is the request's ``snapshot`` member."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute snapshot: an object expected.")
    unknown = set(body) - CREATE_KEYS
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute snapshot. Additional properties are not allowed "
            f"({', '.join(sorted(unknown))} unexpected)"
        )
    if not body.get("volume_id"):
        raise BadRequest(
            "Invalid input for field/attribute snapshot. 'volume_id' is a required property"
        )
    force = body_bool(body.get("force", False), "force")
    name = _text("name", body.get("name", body.get("display_name")))
    description = _text("description", body.get("description", body.get("display_description")))
    return SnapshotCreate(
        volume_id=str(body["volume_id"]),
        force=force,
        name=name,
        description=description,
        meta=volumes.metadata_of(body.get("metadata")),
    )


def parse_update(body: Any) -> SnapshotUpdate:
    """Only the fields the body names change (a null clears a name or description)."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute snapshot: an object expected.")
    texts: dict[str, str | None] = {}
    for key, legacy in (("name", "display_name"), ("description", "display_description")):
        if key in body or legacy in body:
            texts[key] = _text(key, body.get(key, body.get(legacy)))
    meta = volumes.metadata_of(body["metadata"]) if "metadata" in body else None
    return SnapshotUpdate(texts=texts, meta=meta)

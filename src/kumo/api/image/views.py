"""Glance v2 JSON shapes. Glance's links are relative to the endpoint root (``/v2/...``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumo.db import models as m


def timestamp(value: dt.datetime | None) -> str | None:
    """Glance's time format: ISO 8601, seconds, Z."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def image(i: m.Image) -> dict[str, Any]:
    return {
        **(i.properties or {}),
        "id": i.id,
        "name": i.name,
        "status": i.status,
        "visibility": i.visibility,
        "protected": i.protected,
        "os_hidden": i.os_hidden,
        "checksum": i.checksum,
        "os_hash_algo": i.os_hash_algo,
        "os_hash_value": i.os_hash_value,
        "owner": i.owner,
        "size": i.size,
        "virtual_size": i.virtual_size,
        "min_ram": i.min_ram,
        "min_disk": i.min_disk,
        "disk_format": i.disk_format,
        "container_format": i.container_format,
        "created_at": timestamp(i.created_at),
        "updated_at": timestamp(i.updated_at),
        "tags": i.tags,
        "self": f"/v2/images/{i.id}",
        "file": f"/v2/images/{i.id}/file",
        "schema": "/v2/schemas/image",
    }


def member(row: m.ImageMember) -> dict[str, Any]:
    return {
        "image_id": row.image_id,
        "member_id": row.member,
        "status": row.status,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "schema": "/v2/schemas/member",
    }

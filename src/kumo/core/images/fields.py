"""Glance's image vocabulary and the validation of writable attributes, shared by create and
JSON-patch update so both refuse the same input with the same status code."""

from __future__ import annotations

import uuid
from typing import Any

from kumo.core.errors import BadRequest, Forbidden, TooLarge

DISK_FORMATS = (
    "ami",
    "ari",
    "aki",
    "vhd",
    "vhdx",
    "vmdk",
    "raw",
    "qcow2",
    "vdi",
    "iso",
    "ploop",
)
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")
STATUSES = (
    "queued",
    "saving",
    "active",
    "killed",
    "deleted",
    "deactivated",
    "uploading",
    "importing",
)
MEMBER_STATUSES = ("pending", "accepted", "rejected")

# Set by the service, never by a client (Glance answers 403 "read-only").
READ_ONLY = frozenset(
    {
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "file",
        "self",
        "schema",
        "direct_url",
        "stores",
    }
)
RESERVED = frozenset({"deleted", "deleted_at", "location"})
# Columns a client may write; everything else is an extra property (a string).
BASE = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "min_disk",
        "min_ram",
        "tags",
        "container_format",
        "disk_format",
        "owner",
    }
)
# Extra properties Glance's schema allows to be null.
NULLABLE_PROPERTIES = frozenset({"kernel_id", "ramdisk_id"})

MAX_TAGS = 128
MAX_PROPERTIES = 128
MAX_MEMBERS = 128
MAX_STRING = 255
MAX_PROPERTY_VALUE = 65535


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def check_key(key: str) -> None:
    """403 for attributes no client may set (as Glance does), whatever the operation."""
    if key in READ_ONLY or key == "id":
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if key in RESERVED:
        raise Forbidden(f"Attribute '{key}' is reserved.")
    if key == "locations":
        raise Forbidden("It's not allowed to update locations if locations are invisible.")


def _string(key: str, value: Any, nullable: bool, max_len: int = MAX_STRING) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise BadRequest(
            f"Provided object does not match schema 'image': {value!r} is not of "
            f"type 'string' (attribute '{key}')."
        )
    if len(value) > max_len:
        raise BadRequest(
            f"Provided object does not match schema 'image': '{key}' is longer "
            f"than {max_len} characters."
        )
    return value


def _enum(key: str, value: Any, choices: tuple[str, ...], nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if value not in choices:
        raise BadRequest(
            f"Invalid value '{value}' for parameter '{key}': must be one of {', '.join(choices)}."
        )
    return str(value)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**31 - 1:
        raise BadRequest(
            f"Provided object does not match schema 'image': '{key}' must be an "
            "integer from 0 to 2147483647."
        )
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BadRequest(
            f"Provided object does not match schema 'image': {value!r} is not "
            f"of type 'boolean' (attribute '{key}')."
        )
    return value


def tag(value: Any) -> str:
    text = _string("tags", value, nullable=False)
    assert text is not None
    if not text:
        raise BadRequest("Tag cannot be empty.")
    return text


def tags(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise BadRequest("Provided object does not match schema 'image': 'tags' must be a list.")
    unique = list(dict.fromkeys(tag(v) for v in value))
    if len(unique) > MAX_TAGS:
        raise TooLarge(
            f"Maximum number of tags exceeded: attempted {len(unique)}, maximum {MAX_TAGS}."
        )
    return unique


def base_value(key: str, value: Any) -> Any:
    """The validated value of a base attribute (``key`` in BASE)."""
    if key == "name":
        return _string(key, value, nullable=True)
    if key == "visibility":
        return _enum(key, value, VISIBILITIES, nullable=False)
    if key in ("protected", "os_hidden"):
        return _bool(key, value)
    if key in ("min_disk", "min_ram"):
        return _int(key, value)
    if key == "tags":
        return tags(value)
    if key == "disk_format":
        return _enum(key, value, DISK_FORMATS, nullable=True)
    if key == "container_format":
        return _enum(key, value, CONTAINER_FORMATS, nullable=True)
    if key == "owner":
        return _string(key, value, nullable=True)
    raise AssertionError(key)


def property_value(key: str, value: Any) -> str | None:
    """The validated value of an extra property: a string (kernel_id/ramdisk_id: or null)."""
    if not key or len(key) > MAX_STRING:
        raise BadRequest(f"Property name '{key}' must be 1 to {MAX_STRING} characters.")
    text = _string(key, value, nullable=key in NULLABLE_PROPERTIES, max_len=MAX_PROPERTY_VALUE)
    if key in NULLABLE_PROPERTIES and text is not None and not is_uuid(text):
        raise BadRequest(
            f"Provided object does not match schema 'image': '{key}' must be a UUID or null."
        )
    return text


def check_property_count(properties: dict[str, Any]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise TooLarge(
            f"Maximum number of image properties exceeded: attempted "
            f"{len(properties)}, maximum {MAX_PROPERTIES}."
        )

"""Neutron's standard attributes shared by every networking resource: a change bumps the
revision (the generation agents compare with) and the update time; ``If-Match`` checks it."""

from __future__ import annotations

from typing import Any

from kumo.core.errors import BadRequest
from kumo.db.types import utcnow

MAX_NAME = 255
MAX_DESCRIPTION = 255


def touch(row: Any) -> None:
    """Record a change of ``row``: Neutron bumps revision_number once per update."""
    row.revision_number = (row.revision_number or 0) + 1
    row.updated_at = utcnow()


def text(attrs: dict[str, Any], key: str, limit: int = MAX_NAME) -> str | None:
    """A string attribute (name, description, ...) if present, checked as Neutron does."""
    if key not in attrs:
        return None
    value = attrs[key]
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not a valid string.")
    if len(value) > limit:
        raise BadRequest(
            f"Invalid input for {key}. Reason: '{value}' exceeds maximum length of {limit}."
        )
    return value


def boolean(attrs: dict[str, Any], key: str) -> bool | None:
    """A boolean attribute if present; Neutron also takes "true"/"false" and 0/1."""
    if key not in attrs:
        return None
    return to_bool(key, attrs[key])


def to_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise BadRequest(f"Invalid input for {key}. Reason: '{value}' cannot be converted to boolean.")


def string_list(attrs: dict[str, Any], key: str) -> list[str]:
    """A list-of-strings attribute (absent or null: empty)."""
    value = attrs.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not a list of strings.")
    return value

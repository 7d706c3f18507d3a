"""Small helpers shared by the identity modules."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound

T = TypeVar("T")

DEFAULT_DOMAIN_ID = "default"


def new_id() -> str:
    return uuid.uuid4().hex


def get_or_404(session: Session, model: type[T], ident: str, what: str) -> T:
    obj = session.get(model, ident)
    if obj is None:
        raise NotFound(f"Could not find {what}: {ident}.")
    return obj


def flush_unique(session: Session, what: str, name: str) -> None:
    """Flush pending rows, turning a unique-constraint violation into Keystone's 409."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"Conflict occurred attempting to store {what} - Duplicate entry "
            f"found with name {name}."
        ) from exc


def require_str(body: dict[str, Any], key: str, what: str, max_len: int = 255) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(
            f"Invalid input for field '{key}': {what} requires a non-empty string '{key}'."
        )
    if len(value) > max_len:
        raise BadRequest(f"Invalid input for field '{key}': longer than {max_len} characters.")
    return value


def optional_str(
    body: dict[str, Any], key: str, default: str | None = None, max_len: int = 65535
) -> str | None:
    if key not in body or body[key] is None:
        return default
    value = body[key]
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'string'.")
    if len(value) > max_len:
        raise BadRequest(f"Invalid input for field '{key}': longer than {max_len} characters.")
    return value


def optional_bool(body: dict[str, Any], key: str, default: bool) -> bool:
    if key not in body or body[key] is None:
        return default
    value = body[key]
    if not isinstance(value, bool):
        raise BadRequest(f"Invalid input for field '{key}': {value!r} is not of type 'boolean'.")
    return value


def parse_bool_filter(value: str | None) -> bool | None:
    """Query-string booleans as Keystone reads them ('0', 'false' and 'no' are false)."""
    if value is None:
        return None
    return value.strip().lower() not in ("0", "false", "no", "off", "")

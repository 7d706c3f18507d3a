"""Reading JSON request bodies with OpenStack's error semantics (400 on malformed JSON)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from kumo.core.errors import BadRequest, TooLarge

MAX_BODY = 1 << 20


async def json_body(request: Request) -> Any:
    """FastAPI dependency: the parsed body, or None when there is none."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise TooLarge(f"The request body is larger than {MAX_BODY} bytes.")
    if not raw.strip():
        return None
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"Malformed request body: {exc}") from exc
    # JSON can carry a NUL only escaped; PostgreSQL cannot store one (kumo.api.nul_guard).
    if b"\\u0000" in raw and _holds_nul(parsed):
        raise BadRequest(
            "A string in the request body contains a NUL character (\\u0000); kumo does "
            "not accept it. Remove it and send the request again."
        )
    return parsed


def _holds_nul(value: Any) -> bool:
    """Whether a NUL is in any string of ``value``, keys included."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def member(body: Any, key: str) -> dict[str, Any]:
    """``body[key]`` as an object, or a 400 naming what was expected."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(f"Expecting to find {key} in request body.")
    value: dict[str, Any] = body[key]
    return value

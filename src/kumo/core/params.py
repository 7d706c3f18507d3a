"""Request parameters as the OpenStack schemas take them, shared by every service's core."""

from __future__ import annotations

from typing import Any

from kumo.core.errors import BadRequest

# Nova's parameter_types.boolean: each word in lower, Title and UPPER case only.
_TRUE = {v for w in ("true", "on", "yes") for v in (w, w.title(), w.upper())} | {"1"}
_FALSE = {v for w in ("false", "off", "no") for v in (w, w.title(), w.upper())} | {"0"}


def body_bool(value: Any, key: str) -> bool:
    """A boolean in a request body as Nova's schemas take one: JSON true/false or the
    strings true/false, 1/0, on/off, yes/no; anything else (numbers too) is a 400."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _TRUE | _FALSE:
        return value in _TRUE
    raise BadRequest(
        f"Invalid input for field/attribute {key}. Value: {value}. "
        f"{value!r} is not one of the accepted boolean values"
    )

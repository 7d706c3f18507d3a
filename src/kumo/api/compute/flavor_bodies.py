"""The body of a flavor create as Nova's schema checks it, turned into core's
kumo.core.compute.flavors.FlavorSpec: the API's part, so that core sees values only."""

from __future__ import annotations

import re
import uuid
from typing import Any

from kumo.core.compute.flavors import FlavorSpec
from kumo.core.errors import BadRequest
from kumo.core.params import body_bool

# Nova's rule for flavor names and ids: printable, no leading/trailing whitespace.
_ID_PATTERN = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_INT_LIMIT = 2**31 - 1


def _int(body: dict[str, Any], key: str, minimum: int, default: int | None = None) -> int:
    value = body.get(key, default)
    if value is None:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: None. "
            "None is not of type 'integer', 'string'"
        )
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}.")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            f"'{value}' is not a valid integer"
        ) from None
    if not minimum <= number <= _INT_LIMIT:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            f"{value} must be between {minimum} and {_INT_LIMIT}"
        )
    return number


def parse_create(body: dict[str, Any]) -> FlavorSpec:
    """``body`` is the request's ``flavor`` member; the checks run in Nova's order, so the
    first bad field is the one reported."""
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest(
            "Invalid input for field/attribute name: a name of 1 to 255 characters is required."
        )
    name = name.strip()
    flavor_id = body.get("id")
    if flavor_id in (None, "", "auto"):
        flavor_id = str(uuid.uuid4())
    elif (
        not isinstance(flavor_id, str | int)
        or isinstance(flavor_id, bool)
        or not _ID_PATTERN.match(str(flavor_id))
        or len(str(flavor_id)) > 255
    ):
        raise BadRequest(f"Invalid input for field/attribute id. Value: {flavor_id}.")
    rxtx = body.get("rxtx_factor", 1.0)
    try:
        rxtx = float(rxtx)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {rxtx}.") from None
    if not 0 < rxtx <= 3.4e38:
        raise BadRequest("rxtx_factor must be a positive number.")
    is_public = body_bool(
        body.get("os-flavor-access:is_public", True), "os-flavor-access:is_public"
    )
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 65535):
        raise BadRequest("Invalid input for field/attribute description.")
    return FlavorSpec(
        id=str(flavor_id),
        name=name,
        vcpus=_int(body, "vcpus", 1),
        memory_mb=_int(body, "ram", 1),
        root_gb=_int(body, "disk", 0),
        ephemeral_gb=_int(body, "OS-FLV-EXT-DATA:ephemeral", 0, 0),
        swap_mb=_int(body, "swap", 0, 0) if body.get("swap") != "" else 0,
        rxtx_factor=rxtx,
        is_public=is_public,
        description=description,
    )

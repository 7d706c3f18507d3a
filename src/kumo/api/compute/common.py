"""Helpers shared by the compute API modules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.datastructures import QueryParams

from kumo.api.state import AppState
from kumo.core.errors import BadRequest, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.params import body_bool

__all__ = ["body_bool", "body_member", "bool_param", "int_param", "links", "need_version"]


def need_version(version: APIVersion, minimum: str) -> None:
    """A route Nova serves from ``minimum``: below it the route does not exist (404, Nova's
    words), whatever the server or body."""
    if not version.at_least(minimum):
        raise NotFound("The resource could not be found.")


def links(state: AppState, collection: str, ident: str) -> list[dict[str, str]]:
    base = state.config.public_url + "/compute"
    return [
        {"rel": "self", "href": f"{base}/v2.1/{collection}/{ident}"},
        {"rel": "bookmark", "href": f"{base}/{collection}/{ident}"},
    ]


def int_param(q: QueryParams, key: str, minimum: int = 0) -> int | None:
    raw = q.get(key)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(
            f"Invalid input for query parameters {key}. Value: {raw}. '{raw}' is not an integer"
        ) from None
    if value < minimum:
        raise BadRequest(
            f"Invalid input for query parameters {key}. Value: {raw}. "
            f"{raw} is less than the minimum of {minimum}"
        )
    return value


def bool_param(q: QueryParams, key: str) -> bool | None:
    """Nova's lenient booleans; 'None' (sent by openstackclient) means no filter."""
    raw = q.get(key)
    if raw is None or raw.lower() in ("none", ""):
        return None
    if raw.lower() in ("true", "1", "yes", "t", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "f", "off"):
        return False
    raise BadRequest(f"Invalid input for query parameters {key}. Value: {raw}.")


def body_member(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {body}. "
            f"'{key}' is a required property"
        )
    value: dict[str, Any] = body[key]
    return value


def unknown_keys(body: dict[str, Any], allowed: set[str]) -> None:
    """Nova's schemas allow no additional properties: name them in the 400."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            "Additional properties are not allowed "
            f"({', '.join(repr(k) for k in unknown)} {'was' if len(unknown) == 1 else 'were'}"
            " unexpected)"
        )


def nova_time(value: dt.datetime | None) -> str | None:
    """Nova's timestamps on services, zones and usage: ISO 8601 with microseconds, no zone."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")

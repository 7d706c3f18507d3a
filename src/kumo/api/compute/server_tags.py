"""/compute/v2.1/servers/{id}/tags: a server's tags, whole or one by one (from 2.26).

Below 2.26 these routes do not exist (404), as in Nova. A change whose write lost to a
concurrent one (the server row's version, kumo.core.compute.server_tags) is repeated on
fresh rows: setting tags depends on nothing the client saw.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import links, need_version
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import server_tags
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.db.lost_updates import retry_lost_updates

router = APIRouter(prefix="/compute/v2.1/servers/{server_id}/tags")
MIN_VERSION = "2.26"

T = TypeVar("T")


def _write(state: AppState, work: Callable[[Session], T]) -> T:
    """``work`` in a transaction of its own, repeated when it lost to another writer."""

    def attempt() -> T:
        with state.db.session() as session:
            return work(session)

    return retry_lost_updates(attempt)


def parse_tags(body: Any) -> list[str]:
    """``{"tags": [...]}`` and nothing else, a list of strings (Nova's body schema; each
    tag's own rules are core's, kumo.core.compute.server_tags.check_tags)."""
    if not isinstance(body, dict):
        raise BadRequest(f"{body!r} is not of type 'object'")
    extra = sorted(set(body) - {"tags"})
    if extra:
        names = ", ".join(repr(k) for k in extra)
        raise BadRequest(f"Additional properties are not allowed ({names} was unexpected)")
    if "tags" not in body:
        raise BadRequest("'tags' is a required property")
    tags = body["tags"]
    if not isinstance(tags, list):
        raise BadRequest(
            f"Invalid input for field/attribute tags. Value: {tags}. "
            f"{tags!r} is not of type 'array'"
        )
    for index, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise BadRequest(
                f"Invalid input for field/attribute {index}. Value: {tag}. "
                f"{tag!r} is not of type 'string'"
            )
    return tags


@router.get("")
def list_tags(
    server_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    need_version(version, MIN_VERSION)
    with state.db.session() as session:
        return {"tags": server_tags.list_tags(session, who.ctx, server_id)}


@router.put("")
def replace_tags(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    need_version(version, MIN_VERSION)
    tags = parse_tags(body)
    return {
        "tags": _write(
            state, lambda session: server_tags.replace_tags(session, who.ctx, server_id, tags)
        )
    }


@router.delete("", status_code=204)
def delete_tags(
    server_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    need_version(version, MIN_VERSION)
    _write(state, lambda session: server_tags.delete_tags(session, who.ctx, server_id))
    return Response(status_code=204)


@router.get("/{tag}", status_code=204)
def check_tag(
    server_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    need_version(version, MIN_VERSION)
    with state.db.session() as session:
        server_tags.check_tag(session, who.ctx, server_id, tag)
    return Response(status_code=204)


@router.put("/{tag}")
def add_tag(
    server_id: str,
    tag: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    """201 with the tag's URL when it is new, 204 when the server had it. Nova's schema for
    the body is ``null``: no body, or JSON null."""
    need_version(version, MIN_VERSION)
    if body is not None:
        raise BadRequest(f"{body!r} is not of type 'null'")
    created = _write(state, lambda session: server_tags.add_tag(session, who.ctx, server_id, tag))
    if not created:
        return Response(status_code=204)
    location = f"{links(state, 'servers', server_id)[0]['href']}/tags/{quote(tag, safe='')}"
    return Response(status_code=201, headers={"Location": location})


@router.delete("/{tag}", status_code=204)
def delete_tag(
    server_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    need_version(version, MIN_VERSION)
    _write(state, lambda session: server_tags.delete_tag(session, who.ctx, server_id, tag))
    return Response(status_code=204)

"""/compute/v2.1/servers/{id}/metadata: a server's key/value pairs, whole or one by one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.state import AppState, app_state
from kumo.core.compute import metadata
from kumo.core.errors import BadRequest

router = APIRouter(prefix="/compute/v2.1/servers/{server_id}/metadata")


def _items(body: Any) -> Any:
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest(
            "Invalid input for field/attribute metadata. 'metadata' is a required property"
        )
    return body["metadata"]


@router.get("")
def show(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"metadata": metadata.show(session, who.ctx, server_id)}


@router.post("")
def merge(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"metadata": metadata.update(session, who.ctx, server_id, _items(body), False)}


@router.put("")
def replace(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"metadata": metadata.update(session, who.ctx, server_id, _items(body), True)}


@router.get("/{key}")
def show_item(
    server_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"meta": {key: metadata.show_item(session, who.ctx, server_id, key)}}


@router.put("/{key}")
def set_item(
    server_id: str,
    key: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    value = meta_value(body, key)
    with state.db.session() as session:
        return {"meta": {key: metadata.set_item(session, who.ctx, server_id, key, value)}}


def meta_value(body: Any, key: str) -> Any:
    """The value of ``{"meta": {key: value}}``: one key, named the same as in the URL."""
    meta = body.get("meta") if isinstance(body, dict) else None
    if not isinstance(meta, dict):
        raise BadRequest("Malformed request body: 'meta' is a required property")
    if len(meta) > 1:
        raise BadRequest("Request body contains too many items")
    if key not in meta:
        raise BadRequest("Request body and URI mismatch")
    return meta[key]


@router.delete("/{key}", status_code=204)
def delete_item(
    server_id: str, key: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        metadata.delete_item(session, who.ctx, server_id, key)
    return Response(status_code=204)

"""/volume/v3/os-volume-transfer: give a volume to another project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.state import AppState, app_state
from kumo.api.volume.common import PREFIX, bool_param, cinder_time, links
from kumo.core.errors import BadRequest
from kumo.core.volume import transfers
from kumo.db import models as m

router = APIRouter(prefix=PREFIX)
COLLECTION = "os-volume-transfer"


def _view(state: AppState, row: m.VolumeTransfer, detail: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "volume_id": row.volume_id,
        "links": links(state, row.project_id, COLLECTION, row.id),
    }
    if detail:
        view["created_at"] = cinder_time(row.created_at)
    return view


def _parse_create(data: Any) -> tuple[str, str | None]:
    """The ``transfer`` member: the volume's id and an optional name."""
    if not isinstance(data, dict) or not data.get("volume_id"):
        raise BadRequest("Incorrect request body format: 'volume_id' is a required property")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 255):
        raise BadRequest("Invalid input for field/attribute name.")
    return str(data["volume_id"]), name


@router.post(f"/{COLLECTION}", status_code=202)
def create_transfer(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    volume_id, name = _parse_create(member(body, "transfer"))
    with state.db.session() as session:
        row, key = transfers.create(session, who.ctx, volume_id, name)
        view = _view(state, row, detail=True)
    return {"transfer": {**view, "auth_key": key}}


def _listing(request: Request, who: Caller, state: AppState, detail: bool) -> dict[str, Any]:
    all_tenants = bool_param(request.query_params, "all_tenants") or False
    with state.db.session() as session:
        rows = transfers.list_transfers(session, who.ctx, all_tenants)
        return {"transfers": [_view(state, r, detail) for r in rows]}


@router.get(f"/{COLLECTION}")
def list_transfers(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return _listing(request, who, state, detail=False)


@router.get(f"/{COLLECTION}/detail")
def list_transfers_detail(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return _listing(request, who, state, detail=True)


@router.get(f"/{COLLECTION}/{{transfer_id}}")
def show_transfer(
    transfer_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"transfer": _view(state, transfers.get(session, who.ctx, transfer_id), True)}


@router.delete(f"/{COLLECTION}/{{transfer_id}}", status_code=202)
def delete_transfer(
    transfer_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        transfers.delete(session, who.ctx, transfer_id)
    return Response(status_code=202)


@router.post(f"/{COLLECTION}/{{transfer_id}}/accept", status_code=202)
def accept_transfer(
    transfer_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = member(body, "accept")
    if not isinstance(data, dict) or not isinstance(data.get("auth_key"), str):
        raise BadRequest("Incorrect request body format: 'auth_key' is a required property")
    with state.db.session() as session:
        row = transfers.accept(session, who.ctx, transfer_id, data["auth_key"])
        return {"transfer": _view(state, row, detail=False)}

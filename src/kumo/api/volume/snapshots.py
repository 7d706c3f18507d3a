"""/volume/v3/snapshots: create, list, show, update, delete and metadata."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.state import AppState, app_state
from kumo.api.volume import snapshot_bodies
from kumo.api.volume.common import PREFIX, bool_param, int_param, next_link, snapshot_view
from kumo.core.errors import BadRequest
from kumo.core.volume import snapshots

router = APIRouter(prefix=PREFIX)


def _filters(request: Request, who: Caller) -> snapshots.ListFilters:
    q = request.query_params
    return snapshots.ListFilters(
        all_tenants=(bool_param(q, "all_tenants") or False) and who.ctx.is_admin,
        name=q.get("name", q.get("display_name")),
        status=q.get("status"),
        volume_id=q.get("volume_id"),
        limit=int_param(q, "limit"),
        marker=q.get("marker"),
    )


def _listing(request: Request, who: Caller, state: AppState, detail: bool) -> dict[str, Any]:
    f = _filters(request, who)
    with state.db.session() as session:
        rows = snapshots.list_snapshots(session, who.ctx, f)
    views = [snapshot_view(who.ctx, s) for s in rows]
    if not detail:
        for view in views:
            for key in (
                "os-extended-snapshot-attributes:progress",
                "os-extended-snapshot-attributes:project_id",
            ):
                view.pop(key)
    body: dict[str, Any] = {"snapshots": views}
    collection = "snapshots/detail" if detail else "snapshots"
    more = next_link(state, who.ctx, collection, request.query_params, rows, f.limit)
    if more:
        body["snapshots_links"] = more
    return body


@router.get("/snapshots")
def list_snapshots(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return _listing(request, who, state, detail=False)


@router.get("/snapshots/detail")
def list_snapshots_detail(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return _listing(request, who, state, detail=True)


@router.post("/snapshots", status_code=202)
def create_snapshot(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    request = snapshot_bodies.parse_create(member(body, "snapshot"))
    with state.db.session() as session:
        snapshot = snapshots.create(session, who.ctx, request)
        view = snapshot_view(who.ctx, snapshot)
    return {"snapshot": view}


@router.get("/snapshots/{snapshot_id}")
def show_snapshot(
    snapshot_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"snapshot": snapshot_view(who.ctx, snapshots.get(session, who.ctx, snapshot_id))}


@router.put("/snapshots/{snapshot_id}")
def update_snapshot(
    snapshot_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    change = snapshot_bodies.parse_update(member(body, "snapshot"))
    with state.db.session() as session:
        snapshot = snapshots.update(session, who.ctx, snapshot_id, change)
        session.flush()
        return {"snapshot": snapshot_view(who.ctx, snapshot)}


@router.delete("/snapshots/{snapshot_id}", status_code=202)
def delete_snapshot(
    snapshot_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        snapshots.delete(session, who.ctx, snapshot_id)
    return Response(status_code=202)


@router.get("/snapshots/{snapshot_id}/metadata")
def snapshot_metadata(
    snapshot_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return {"metadata": dict(snapshots.get(session, who.ctx, snapshot_id).meta or {})}


@router.post("/snapshots/{snapshot_id}/metadata")
@router.put("/snapshots/{snapshot_id}/metadata")
def set_snapshot_metadata(
    snapshot_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    if not isinstance(body, dict) or "metadata" not in body:
        raise BadRequest("Malformed request body: 'metadata' is a required property")
    with state.db.session() as session:
        meta = snapshots.set_metadata(
            session, who.ctx, snapshot_id, body["metadata"], replace=request.method == "PUT"
        )
        return {"metadata": meta}

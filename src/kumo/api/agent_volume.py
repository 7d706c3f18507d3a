"""Agent API v1, block storage: a host's volumes and snapshots to make, and the outcomes
its agent reports, volumes and the disks it plugs into servers alike."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.agent import authorize_host
from kumo.api.body import json_body
from kumo.api.state import AppState, app_state
from kumo.core import wakeup
from kumo.core.errors import NotFound
from kumo.core.volume import reports
from kumo.db import models as m

router = APIRouter(prefix="/agent/v1")


@router.get("/hosts/{host_id}/volumes")
def host_volumes(
    host_id: str,
    request: Request,
    wait: float = 0.0,
    since: int = -1,
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    """The host's volumes and snapshots. With ``wait`` and the ``mark`` of the previous
    answer as ``since``, it answers as soon as one of them changes (else after ``wait``
    seconds, at most 30: the periodic resync)."""
    authorize_host(request, state)
    topic = wakeup.volume_topic(host_id)
    if wait > 0 and since >= 0:
        wakeup.wait(topic, since, min(wait, 30.0))
    mark = wakeup.mark(topic)
    with state.db.session() as session:
        if session.get(m.Host, host_id) is None:
            raise NotFound(f"Host {host_id} is not registered; the agent must register again.")
        return {"mark": mark, **reports.work_for_host(session, host_id)}


@router.post("/hosts/{host_id}/volumes/{volume_id}/outcome", status_code=204)
def volume_outcome(
    host_id: str,
    volume_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    authorize_host(request, state)
    with state.db.session() as session:
        reports.record_volume(session, host_id, volume_id, body)
    # A server waiting for this volume (made by its block device mapping) can start now.
    wakeup.notify(wakeup.host_topic(host_id))
    return Response(status_code=204)


@router.post("/hosts/{host_id}/snapshots/{snapshot_id}/outcome", status_code=204)
def snapshot_outcome(
    host_id: str,
    snapshot_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    authorize_host(request, state)
    with state.db.session() as session:
        reports.record_snapshot(session, host_id, snapshot_id, body)
    return Response(status_code=204)


@router.post("/hosts/{host_id}/attachments/{attachment_id}/outcome", status_code=204)
def attachment_outcome(
    host_id: str,
    attachment_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    authorize_host(request, state)
    with state.db.session() as session:
        reports.record_attachment(session, host_id, attachment_id, body)
    return Response(status_code=204)

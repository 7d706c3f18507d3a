"""/volume/v3/{project_id}/os-services: Cinder's service list (admin only, as Cinder's
``volume_extension:services:index`` policy says)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.state import AppState, app_state
from kumo.api.volume.common import PREFIX, cinder_time
from kumo.core.policy import enforce
from kumo.core.volume import services

router = APIRouter(prefix=PREFIX)


def view(s: services.VolumeService) -> dict[str, Any]:
    """Cinder 3.0's fields; a cinder-volume service adds its replication state (kumo's
    backends do not replicate: disabled, never failed over, not frozen)."""
    body: dict[str, Any] = {
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": s.status,
        "state": s.state,
        "updated_at": cinder_time(s.updated_at),
        "disabled_reason": s.disabled_reason,
    }
    if s.binary == services.VOLUME:
        body.update({"replication_status": "disabled", "active_backend_id": None, "frozen": False})
    return body


@router.get("/os-services")
def list_services(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "volume:services:index")
    q = request.query_params
    with state.db.session() as session:
        rows = services.list_services(
            session, state.config.hosts.heartbeat_timeout, q.get("host"), q.get("binary")
        )
    return {"services": [view(s) for s in rows]}

"""/compute/v2.1/servers/{id}/diagnostics (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.state import AppState, app_state
from kumo.core.compute import diagnostics

router = APIRouter(prefix="/compute/v2.1/servers/{server_id}/diagnostics")


@router.get("")
def show(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        return diagnostics.diagnostics(session, who.ctx, server_id)

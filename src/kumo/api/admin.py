"""/kumo/v1: the operator's API (hosts now; usage and upgrades later)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.identity.views import timestamp
from kumo.api.state import AppState, app_state
from kumo.core import hosts
from kumo.core.policy import enforce

router = APIRouter(prefix="/kumo/v1")


@router.get("/hosts")
def list_hosts(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "kumo:list_hosts")
    with state.db.session() as session:
        rows = hosts.list_hosts(session, state.config.hosts.heartbeat_timeout)
        return {
            "hosts": [
                {
                    "id": s.host.id,
                    "name": s.host.name,
                    "state": s.state,
                    "enabled": s.host.enabled,
                    "disabled_reason": s.host.disabled_reason,
                    "agent_version": s.host.agent_version,
                    "agent_api_versions": s.host.agent_api_versions,
                    "capabilities": s.host.capabilities,
                    "inventory": s.host.inventory,
                    "last_heartbeat_at": timestamp(s.host.last_heartbeat_at),
                }
                for s in rows
            ]
        }

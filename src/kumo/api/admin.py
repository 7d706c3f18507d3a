"""/kumo/v1: the operator's API (hosts and their failures now; usage and upgrades later)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.identity.views import timestamp
from kumo.api.state import AppState, app_state
from kumo.core import ha, hosts
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


@router.get("/host-failures")
def list_host_failures(
    host: str | None = None,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    """Host failures (kumo.core.ha), newest first, each with the steps it went through:
    what the controller saw, how the host was fenced, what became of each server."""
    enforce(who.ctx, "kumo:list_hosts")
    with state.db.session() as session:
        host_id = hosts.find_host(session, host).id if host else None
        names = {h.host.id: h.host.name for h in hosts.list_hosts(session, 0.0)}
        return {
            "host_failures": [
                {
                    "id": f.id,
                    "host_id": f.host_id,
                    "host": names.get(f.host_id, ""),
                    "state": f.state,
                    "servers": f.servers or {},
                    "fence_attempts": f.fence_attempts,
                    "created_at": timestamp(f.created_at),
                    "ended_at": timestamp(f.ended_at),
                    "events": [
                        {
                            "step": e.step,
                            "message": e.message,
                            "created_at": timestamp(e.created_at),
                        }
                        for e in events
                    ],
                }
                for f, events in ha.history(session, host_id)
            ]
        }

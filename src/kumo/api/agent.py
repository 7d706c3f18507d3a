"""Agent API v1: how host agents register and report (they never touch the database)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.body import json_body
from kumo.api.state import AppState, app_state
from kumo.core import hosts
from kumo.core.errors import BadRequest

router = APIRouter(prefix="/agent/v1")


def _host_view(host: Any) -> dict[str, Any]:
    return {
        "id": host.id,
        "name": host.name,
        "enabled": host.enabled,
        "disabled_reason": host.disabled_reason,
    }


def _authorize(request: Request, state: AppState) -> None:
    with state.db.session() as session:
        hosts.check_host_credential(session, request.headers.get("X-Kumo-Host-Credential"))


@router.get("")
def version() -> dict[str, Any]:
    return {
        "version": {
            "id": "v1",
            "status": "CURRENT",
            "served": list(hosts.SERVED_AGENT_API_VERSIONS),
        }
    }


@router.post("/hosts")
def register(
    request: Request, body: Any = Depends(json_body), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _authorize(request, state)
    if not isinstance(body, dict) or not isinstance(body.get("host"), dict):
        raise BadRequest("Expecting to find host in request body.")
    with state.db.session() as session:
        host = hosts.register(session, body["host"])
        return {"host": _host_view(host)}


@router.post("/hosts/{host_id}/heartbeat")
def heartbeat(
    host_id: str, request: Request, state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _authorize(request, state)
    with state.db.session() as session:
        host = hosts.heartbeat(session, host_id)
        return {"host": _host_view(host)}

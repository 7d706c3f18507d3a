"""/compute/v2.1/os-simple-tenant-usage: server-hours per project over a period."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.compute.common import bool_param, nova_time
from kumo.api.state import AppState, app_state
from kumo.core.compute import usage
from kumo.core.errors import NotFound
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-simple-tenant-usage")


def view(u: usage.ProjectUsage, servers: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tenant_id": u.project_id,
        "start": nova_time(u.start),
        "stop": nova_time(u.stop),
        "total_hours": u.total_hours,
        "total_vcpus_usage": u.total_vcpus_usage,
        "total_memory_mb_usage": u.total_memory_mb_usage,
        "total_local_gb_usage": u.total_local_gb_usage,
    }
    if servers:
        body["server_usages"] = [
            {**s, "started_at": nova_time(s["started_at"]), "ended_at": nova_time(s["ended_at"])}
            for s in u.server_usages
        ]
    return body


@router.get("")
def list_usage(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Every project's usage (admin); ``detailed=1`` adds each server."""
    enforce(who.ctx, "compute:usage:list")
    q = request.query_params
    start, stop = usage.period(q.get("start"), q.get("end"))
    detailed = bool(bool_param(q, "detailed"))
    with state.db.session() as session:
        found = usage.usages(session, start, stop)
    return {"tenant_usages": [view(u, detailed) for u in found]}


@router.get("/", include_in_schema=False)
def empty_project_id(who: Caller = Depends(caller)) -> None:
    """An empty project id names no project (Nova: 404), not the list behind a redirect."""
    raise NotFound("The resource could not be found.")


@router.get("/{project_id}")
def show_usage(
    project_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    """One project's usage with its servers; Nova answers ``{}`` when nothing ran."""
    enforce(who.ctx, "compute:usage:show", {"project_id": project_id})
    q = request.query_params
    start, stop = usage.period(q.get("start"), q.get("end"))
    with state.db.session() as session:
        found = usage.usages(session, start, stop, project_id)
    return {"tenant_usage": view(found[0], True) if found else {}}

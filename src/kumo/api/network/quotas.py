"""/network/v2.0/quotas: Neutron's quotas and quota_details extensions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network.common import V2, resource_body
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, Forbidden
from kumo.core.network import quotas
from kumo.core.policy import Context

router = APIRouter(prefix=V2)


def _admin(ctx: Context) -> None:
    if not ctx.is_admin:
        raise Forbidden("(rule:update_quota) is disallowed by policy: quotas are set by admins.")


def _reader(ctx: Context, project_id: str) -> None:
    if not ctx.is_admin and ctx.project_id != project_id:
        raise Forbidden("(rule:get_quota) is disallowed by policy for another project.")


@router.get("/quotas")
def list_quotas(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Admins: the projects with limits of their own (Neutron's quota index)."""
    _admin(who.ctx)
    with state.db.session() as session:
        found = [
            {**quotas.limits(session, p), "project_id": p, "tenant_id": p}
            for p in quotas.projects_with_limits(session)
        ]
    return {"quotas": found}


@router.get("/quotas/tenant")
@router.get("/quotas/project")
def quota_tenant(who: Caller = Depends(caller)) -> dict[str, Any]:
    project = who.ctx.project_id
    return {"tenant": {"tenant_id": project}, "project": {"project_id": project}}


@router.get("/quotas/{project_id}")
def show_quota(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _reader(who.ctx, project_id)
    with state.db.session() as session:
        return {"quota": quotas.limits(session, project_id)}


@router.get("/quotas/{project_id}/default")
def show_default_quota(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _reader(who.ctx, project_id)
    with state.db.session() as session:
        return {"quota": quotas.defaults(session)}


@router.get("/quotas/{project_id}/details")
def show_quota_details(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _reader(who.ctx, project_id)
    with state.db.session() as session:
        limit = quotas.limits(session, project_id)
        used = quotas.usage(session, project_id)
    return {
        "quota": {name: {"limit": limit[name], "used": used[name], "reserved": 0} for name in limit}
    }


@router.put("/quotas/{project_id}")
def update_quota(
    project_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    _admin(who.ctx)
    data = resource_body(body, "quota")
    unknown = sorted(set(data) - set(quotas.DEFAULTS) - {"force", "check_limit"})
    if unknown:
        raise BadRequest("Unrecognized attribute(s) '{}'".format(", ".join(unknown)))
    wanted = {n: quotas.check_value(n, v) for n, v in data.items() if n in quotas.DEFAULTS}
    check_limit = data.get("check_limit") in (True, "true", "True")
    with state.db.session() as session:
        return {"quota": quotas.update(session, project_id, wanted, check_limit)}


@router.delete("/quotas/{project_id}")
def delete_quota(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    _admin(who.ctx)
    with state.db.session() as session:
        quotas.reset(session, project_id)
    return Response(status_code=204)

"""/v3/OS-TRUST/trusts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.errors import NotFound
from kumo.core.identity import trusts
from kumo.db import models as m

router = APIRouter(prefix="/OS-TRUST")


def _trust(t: m.Trust, roles: list[m.Role], base: str) -> dict[str, Any]:
    return {
        "id": t.id,
        "trustor_user_id": t.trustor_user_id,
        "trustee_user_id": t.trustee_user_id,
        "project_id": t.project_id,
        "impersonation": t.impersonation,
        "expires_at": views.timestamp(t.expires_at),
        "remaining_uses": t.remaining_uses,
        "roles": [{"id": r.id, "name": r.name} for r in roles],
        "roles_links": {
            "self": f"{base}/OS-TRUST/trusts/{t.id}/roles",
            "previous": None,
            "next": None,
        },
        "links": {"self": f"{base}/OS-TRUST/trusts/{t.id}"},
    }


@router.post("/trusts", status_code=201)
def create_trust(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        trust = trusts.create(session, who.ctx.user_id, member(body, "trust"))
        roles = trusts.roles_of(session, trust)
    return {"trust": _trust(trust, roles, state.identity_url)}


@router.get("/trusts")
@router.get("/trusts/", include_in_schema=False)
def list_trusts(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    q = request.query_params
    ctx = who.ctx
    with state.db.session() as session:
        rows = [
            (t, trusts.roles_of(session, t))
            for t in trusts.list_trusts(
                session,
                ctx.user_id,
                ctx.is_admin,
                q.get("trustor_user_id"),
                q.get("trustee_user_id"),
            )
        ]
    base = state.identity_url
    return views.collection(
        "trusts", [_trust(t, r, base) for t, r in rows], base + "/OS-TRUST/trusts"
    )


@router.get("/trusts/{trust_id}")
def get_trust(
    trust_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    ctx = who.ctx
    with state.db.session() as session:
        trust = trusts.get(session, trust_id, ctx.user_id, ctx.is_admin)
        roles = trusts.roles_of(session, trust)
    return {"trust": _trust(trust, roles, state.identity_url)}


@router.get("/trusts/{trust_id}/roles")
def trust_roles(
    trust_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    ctx = who.ctx
    with state.db.session() as session:
        trust = trusts.get(session, trust_id, ctx.user_id, ctx.is_admin)
        roles = trusts.roles_of(session, trust)
    base = state.identity_url
    return views.collection(
        "roles", [views.role(r, base) for r in roles], f"{base}/OS-TRUST/trusts/{trust_id}/roles"
    )


@router.delete("/trusts/{trust_id}", status_code=204)
def delete_trust(
    trust_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    ctx = who.ctx
    with state.db.session() as session:
        trusts.delete(session, trust_id, ctx.user_id, ctx.is_admin)
    return Response(status_code=204)


@router.head("/trusts/{trust_id}/roles/{role_id}", status_code=200)
@router.get("/trusts/{trust_id}/roles/{role_id}")
def trust_role(
    trust_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    ctx = who.ctx
    with state.db.session() as session:
        trust = trusts.get(session, trust_id, ctx.user_id, ctx.is_admin)
        for role in trusts.roles_of(session, trust):
            if role.id == role_id:
                return {"role": views.role(role, state.identity_url)}
    raise NotFound(f"Role {role_id} is not delegated by trust {trust_id}.")

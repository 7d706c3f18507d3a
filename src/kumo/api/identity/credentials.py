"""/v3/credentials and /v3/policies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.identity import credentials
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter()


def _credential(c: m.Credential, base: str) -> dict[str, Any]:
    return {
        **(c.extra or {}),
        "id": c.id,
        "user_id": c.user_id,
        "project_id": c.project_id,
        "type": c.type,
        "blob": c.blob,
        "links": {"self": f"{base}/credentials/{c.id}"},
    }


def _policy(p: m.Policy, base: str) -> dict[str, Any]:
    return {
        **(p.extra or {}),
        "id": p.id,
        "type": p.type,
        "blob": p.blob,
        "links": {"self": f"{base}/policies/{p.id}"},
    }


@router.get("/credentials")
def list_credentials(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    ctx = who.ctx
    q = request.query_params
    user_id = q.get("user_id")
    if not ctx.is_admin:
        # Everyone may list their own credentials; only an admin sees others'.
        enforce(ctx, "identity:get_credential", {"user_id": user_id or ctx.user_id})
        user_id = ctx.user_id
    with state.db.session() as session:
        rows = credentials.list_credentials(session, user_id, q.get("type"))
    base = state.identity_url
    return views.collection(
        "credentials", [_credential(c, base) for c in rows], base + "/credentials"
    )


@router.post("/credentials", status_code=201)
def create_credential(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = member(body, "credential")
    enforce(who.ctx, "identity:create_credential", {"user_id": data.get("user_id")})
    with state.db.session() as session:
        cred = credentials.create_credential(session, data)
    return {"credential": _credential(cred, state.identity_url)}


def _owned(state: AppState, who: Caller, cred_id: str, action: str) -> None:
    with state.db.session() as session:
        cred = credentials.get_credential(session, cred_id)
    enforce(who.ctx, action, {"user_id": cred.user_id})


@router.get("/credentials/{cred_id}")
def get_credential(
    cred_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _owned(state, who, cred_id, "identity:get_credential")
    with state.db.session() as session:
        cred = credentials.get_credential(session, cred_id)
    return {"credential": _credential(cred, state.identity_url)}


@router.patch("/credentials/{cred_id}")
def update_credential(
    cred_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    _owned(state, who, cred_id, "identity:update_credential")
    data = member(body, "credential")
    if "user_id" in data:
        # The new owner must pass the rule too, or a user could hand a credential to anyone
        # (Keystone's CVE-2020-12691).
        enforce(who.ctx, "identity:update_credential", {"user_id": data["user_id"]})
    with state.db.session() as session:
        cred = credentials.update_credential(session, cred_id, data)
    return {"credential": _credential(cred, state.identity_url)}


@router.delete("/credentials/{cred_id}", status_code=204)
def delete_credential(
    cred_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    _owned(state, who, cred_id, "identity:delete_credential")
    with state.db.session() as session:
        credentials.delete_credential(session, cred_id)
    return Response(status_code=204)


@router.get("/policies")
def list_policies(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_policies")
    with state.db.session() as session:
        rows = credentials.list_policies(session, request.query_params.get("type"))
    base = state.identity_url
    return views.collection("policies", [_policy(p, base) for p in rows], base + "/policies")


@router.post("/policies", status_code=201)
def create_policy(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_policies")
    with state.db.session() as session:
        policy = credentials.create_policy(session, member(body, "policy"))
    return {"policy": _policy(policy, state.identity_url)}


@router.get("/policies/{policy_id}")
def get_policy(
    policy_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_policies")
    with state.db.session() as session:
        policy = credentials.get_policy(session, policy_id)
    return {"policy": _policy(policy, state.identity_url)}


@router.patch("/policies/{policy_id}")
def update_policy(
    policy_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:manage_policies")
    with state.db.session() as session:
        policy = credentials.update_policy(session, policy_id, member(body, "policy"))
    return {"policy": _policy(policy, state.identity_url)}


@router.delete("/policies/{policy_id}", status_code=204)
def delete_policy(
    policy_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:manage_policies")
    with state.db.session() as session:
        credentials.delete_policy(session, policy_id)
    return Response(status_code=204)

"""/v3/users/{user_id}/application_credentials."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest
from kumo.core.identity import appcreds
from kumo.core.policy import enforce

router = APIRouter()


@router.post("/users/{user_id}/application_credentials", status_code=201)
def create(
    user_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_application_credential", {"user_id": user_id})
    token = who.token
    if token.project is None:
        raise BadRequest("An application credential is created from a project-scoped token.")
    if token.user.id != user_id:
        raise BadRequest("An application credential can only be created for the token's own user.")
    with state.db.session() as session:
        cred, secret = appcreds.create(
            session, user_id, token.project.id, token.roles, member(body, "application_credential")
        )
        roles = appcreds.roles_of(session, cred)
    return {"application_credential": views.app_cred(cred, roles, state.identity_url, secret)}


@router.get("/users/{user_id}/application_credentials")
def list_(
    user_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_application_credentials", {"user_id": user_id})
    with state.db.session() as session:
        rows = [
            (c, appcreds.roles_of(session, c))
            for c in appcreds.list_for_user(session, user_id, request.query_params.get("name"))
        ]
    base = state.identity_url
    return views.collection(
        "application_credentials",
        [views.app_cred(c, r, base) for c, r in rows],
        f"{base}/users/{user_id}/application_credentials",
    )


@router.get("/users/{user_id}/application_credentials/{cred_id}")
def get(
    user_id: str, cred_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_application_credential", {"user_id": user_id})
    with state.db.session() as session:
        cred = appcreds.get(session, user_id, cred_id)
        roles = appcreds.roles_of(session, cred)
    return {"application_credential": views.app_cred(cred, roles, state.identity_url)}


@router.delete("/users/{user_id}/application_credentials/{cred_id}", status_code=204)
def delete(
    user_id: str, cred_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:delete_application_credential", {"user_id": user_id})
    with state.db.session() as session:
        appcreds.delete(session, user_id, cred_id)
    return Response(status_code=204)

"""/v3/users and /v3/groups, with membership and a user's own projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.identity.domains_projects import caller_domain
from kumo.api.state import AppState, app_state
from kumo.core.identity import users
from kumo.core.identity.common import parse_bool_filter
from kumo.core.identity.roles import list_assignments
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter()


@router.get("/users")
def list_users(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_users")
    q = request.query_params
    filters = {
        "name": q.get("name"),
        "domain_id": q.get("domain_id"),
        "enabled": parse_bool_filter(q.get("enabled")),
    }
    with state.db.session() as session:
        rows = users.list_users(session, filters)
    base = state.identity_url
    return views.collection("users", [views.user(u, base) for u in rows], base + "/users")


@router.post("/users", status_code=201)
def create_user(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_user")
    with state.db.session() as session:
        user = users.create_user(session, member(body, "user"), caller_domain(who))
    return {"user": views.user(user, state.identity_url)}


@router.get("/users/{user_id}")
def get_user(
    user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_user", {"user_id": user_id})
    with state.db.session() as session:
        user = users.get_user(session, user_id)
    return {"user": views.user(user, state.identity_url)}


@router.patch("/users/{user_id}")
def update_user(
    user_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:update_user", {"user_id": user_id})
    with state.db.session() as session:
        user = users.update_user(session, user_id, member(body, "user"))
    return {"user": views.user(user, state.identity_url)}


@router.delete("/users/{user_id}", status_code=204)
def delete_user(
    user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:delete_user", {"user_id": user_id})
    with state.db.session() as session:
        users.delete_user(session, user_id)
    return Response(status_code=204)


@router.post("/users/{user_id}/password", status_code=204)
def change_password(
    user_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "identity:change_password", {"user_id": user_id})
    with state.db.session() as session:
        users.change_password(session, user_id, member(body, "user"))
    return Response(status_code=204)


@router.get("/users/{user_id}/projects")
def user_projects(
    user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_user_projects", {"user_id": user_id})
    with state.db.session() as session:
        users.get_user(session, user_id)
        ids = {
            a.target_id
            for a in list_assignments(session, {"user_id": user_id, "effective": True})
            if a.target_type == "project"
        }
        rows = list(
            session.scalars(select(m.Project).where(m.Project.id.in_(ids)).order_by(m.Project.name))
        )
    base = state.identity_url
    return views.collection(
        "projects", [views.project(p, base) for p in rows], f"{base}/users/{user_id}/projects"
    )


@router.get("/users/{user_id}/groups")
def user_groups(
    user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_groups_for_user", {"user_id": user_id})
    with state.db.session() as session:
        rows = users.user_groups(session, user_id)
    base = state.identity_url
    return views.collection(
        "groups", [views.group(g, base) for g in rows], f"{base}/users/{user_id}/groups"
    )


@router.get("/groups")
def list_groups(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_groups")
    q = request.query_params
    with state.db.session() as session:
        rows = users.list_groups(session, {"name": q.get("name"), "domain_id": q.get("domain_id")})
    base = state.identity_url
    return views.collection("groups", [views.group(g, base) for g in rows], base + "/groups")


@router.post("/groups", status_code=201)
def create_group(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_group")
    with state.db.session() as session:
        group = users.create_group(session, member(body, "group"), caller_domain(who))
    return {"group": views.group(group, state.identity_url)}


@router.get("/groups/{group_id}")
def get_group(
    group_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_group")
    with state.db.session() as session:
        group = users.get_group(session, group_id)
    return {"group": views.group(group, state.identity_url)}


@router.patch("/groups/{group_id}")
def update_group(
    group_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:update_group")
    with state.db.session() as session:
        group = users.update_group(session, group_id, member(body, "group"))
    return {"group": views.group(group, state.identity_url)}


@router.delete("/groups/{group_id}", status_code=204)
def delete_group(
    group_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:delete_group")
    with state.db.session() as session:
        users.delete_group(session, group_id)
    return Response(status_code=204)


@router.get("/groups/{group_id}/users")
def group_users(
    group_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_users_in_group")
    with state.db.session() as session:
        rows = users.group_members(session, group_id)
    base = state.identity_url
    return views.collection(
        "users", [views.user(u, base) for u in rows], f"{base}/groups/{group_id}/users"
    )


@router.put("/groups/{group_id}/users/{user_id}", status_code=204)
def add_user_to_group(
    group_id: str, user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:add_user_to_group")
    with state.db.session() as session:
        users.add_member(session, group_id, user_id)
    return Response(status_code=204)


@router.head("/groups/{group_id}/users/{user_id}", status_code=204)
@router.get("/groups/{group_id}/users/{user_id}", status_code=204)
def check_user_in_group(
    group_id: str, user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:check_user_in_group")
    with state.db.session() as session:
        users.check_member(session, group_id, user_id)
    return Response(status_code=204)


@router.delete("/groups/{group_id}/users/{user_id}", status_code=204)
def remove_user_from_group(
    group_id: str, user_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:remove_user_from_group")
    with state.db.session() as session:
        users.remove_member(session, group_id, user_id)
    return Response(status_code=204)

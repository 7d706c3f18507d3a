"""/v3/roles, grants on projects and domains, and /v3/role_assignments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest
from kumo.core.identity import roles
from kumo.core.identity.common import optional_str, parse_bool_filter, require_str
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter()

_TARGETS = {"projects": "project", "domains": "domain"}
_ACTORS = {"users": "user", "groups": "group"}


def _kinds(targets: str, actors: str) -> tuple[str, str]:
    if targets not in _TARGETS or actors not in _ACTORS:
        raise BadRequest(f"Unknown grant path /{targets}/.../{actors}.")
    return _TARGETS[targets], _ACTORS[actors]


@router.get("/roles")
def list_roles(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_roles")
    q = request.query_params
    with state.db.session() as session:
        rows = roles.list_roles(session, q.get("name"), q.get("domain_id"))
    base = state.identity_url
    return views.collection("roles", [views.role(r, base) for r in rows], base + "/roles")


def _parse_create(data: dict[str, Any]) -> roles.RoleSpec:
    return roles.RoleSpec(
        name=require_str(data, "name", "a role", 255),
        domain_id=optional_str(data, "domain_id") or "",
        description=optional_str(data, "description", "") or "",
    )


def _parse_update(data: dict[str, Any]) -> roles.RoleUpdate:
    """Only the fields named change; a role's domain cannot (core refuses a different one)."""
    return roles.RoleUpdate(
        name=require_str(data, "name", "a role", 255) if "name" in data else None,
        description=(optional_str(data, "description", "") or "")
        if "description" in data
        else None,
        domain_id=str(data["domain_id"] or "") if "domain_id" in data else None,
    )


@router.post("/roles", status_code=201)
def create_role(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_role")
    with state.db.session() as session:
        role = roles.create_role(session, _parse_create(member(body, "role")))
    return {"role": views.role(role, state.identity_url)}


@router.get("/roles/{role_id}")
def get_role(
    role_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_role")
    with state.db.session() as session:
        role = roles.get_role(session, role_id)
    return {"role": views.role(role, state.identity_url)}


@router.patch("/roles/{role_id}")
def update_role(
    role_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:update_role")
    change = _parse_update(member(body, "role"))
    with state.db.session() as session:
        role = roles.update_role(session, role_id, change)
    return {"role": views.role(role, state.identity_url)}


@router.delete("/roles/{role_id}", status_code=204)
def delete_role(
    role_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:delete_role")
    with state.db.session() as session:
        roles.delete_role(session, role_id)
    return Response(status_code=204)


@router.get("/{targets}/{target_id}/{actors}/{actor_id}/roles")
def list_grants(
    targets: str,
    target_id: str,
    actors: str,
    actor_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    target_type, actor_type = _kinds(targets, actors)
    enforce(who.ctx, "identity:list_grants")
    with state.db.session() as session:
        rows = roles.list_grants(session, actor_type, actor_id, target_type, target_id)
    base = state.identity_url
    return views.collection(
        "roles",
        [views.role(r, base) for r in rows],
        f"{base}/{targets}/{target_id}/{actors}/{actor_id}/roles",
    )


@router.put("/{targets}/{target_id}/{actors}/{actor_id}/roles/{role_id}", status_code=204)
def grant(
    targets: str,
    target_id: str,
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    target_type, actor_type = _kinds(targets, actors)
    enforce(who.ctx, "identity:grant")
    with state.db.session() as session:
        roles.grant(session, actor_type, actor_id, target_type, target_id, role_id)
    return Response(status_code=204)


@router.head("/{targets}/{target_id}/{actors}/{actor_id}/roles/{role_id}", status_code=204)
@router.get("/{targets}/{target_id}/{actors}/{actor_id}/roles/{role_id}", status_code=204)
def check_grant(
    targets: str,
    target_id: str,
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    target_type, actor_type = _kinds(targets, actors)
    enforce(who.ctx, "identity:check_grant")
    with state.db.session() as session:
        roles.check_grant(session, actor_type, actor_id, target_type, target_id, role_id)
    return Response(status_code=204)


@router.delete("/{targets}/{target_id}/{actors}/{actor_id}/roles/{role_id}", status_code=204)
def revoke_grant(
    targets: str,
    target_id: str,
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    target_type, actor_type = _kinds(targets, actors)
    enforce(who.ctx, "identity:revoke_grant")
    with state.db.session() as session:
        roles.revoke_grant(session, actor_type, actor_id, target_type, target_id, role_id)
    return Response(status_code=204)


@router.put(
    "/OS-INHERIT/{targets}/{target_id}/{actors}/{actor_id}/roles/{role_id}/inherited_to_projects",
    status_code=204,
)
def grant_inherited(
    targets: str,
    target_id: str,
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    target_type, actor_type = _kinds(targets, actors)
    enforce(who.ctx, "identity:grant")
    with state.db.session() as session:
        roles.grant(session, actor_type, actor_id, target_type, target_id, role_id, inherited=True)
    return Response(status_code=204)


@router.delete(
    "/OS-INHERIT/{targets}/{target_id}/{actors}/{actor_id}/roles/{role_id}/inherited_to_projects",
    status_code=204,
)
def revoke_inherited(
    targets: str,
    target_id: str,
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    target_type, actor_type = _kinds(targets, actors)
    enforce(who.ctx, "identity:revoke_grant")
    with state.db.session() as session:
        roles.revoke_grant(
            session, actor_type, actor_id, target_type, target_id, role_id, inherited=True
        )
    return Response(status_code=204)


@router.get("/role_assignments")
def role_assignments(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    q = request.query_params
    filters: dict[str, Any] = {
        "user_id": q.get("user.id"),
        "group_id": q.get("group.id"),
        "role_id": q.get("role.id"),
        "project_id": q.get("scope.project.id"),
        "domain_id": q.get("scope.domain.id"),
        "system": q.get("scope.system"),
        "effective": "effective" in q and parse_bool_filter(q.get("effective") or "true"),
    }
    if "scope.OS-INHERIT:inherited_to" in q:
        filters["inherited"] = True
    if filters["effective"] and filters["group_id"]:
        raise BadRequest("The 'effective' and 'group.id' filters cannot be combined.")
    ctx = who.ctx
    if filters["project_id"] and not ctx.is_admin:
        enforce(
            ctx, "identity:list_role_assignments_for_project", {"project_id": filters["project_id"]}
        )
    elif filters["user_id"] and filters["user_id"] == ctx.user_id and not ctx.is_admin:
        pass  # a user may always see their own assignments
    else:
        enforce(ctx, "identity:list_role_assignments")
    with state.db.session() as session:
        rows = roles.list_assignments(session, filters)
        names = None
        owners: dict[str, dict[str, Any]] = {}
        if "include_names" in q and parse_bool_filter(q.get("include_names") or "true"):
            names = {}
            for model in (m.Role, m.User, m.Group, m.Project, m.Domain):
                names.update({i: n for i, n in session.execute(select(model.id, model.name))})
            # Keystone names the owning domain too: the CLI shows "user@Default".
            for owned in (m.User, m.Group, m.Project):
                owners.update(
                    {
                        i: {"id": d, "name": names.get(d)}
                        for i, d in session.execute(select(owned.id, owned.domain_id))
                    }
                )
    base = state.identity_url
    return views.collection(
        "role_assignments",
        [views.assignment(a, base, names, owners) for a in rows],
        str(request.url),
    )


@router.get("/system/{actors}/{actor_id}/roles")
def list_system_grants(
    actors: str,
    actor_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    _, actor_type = _kinds("projects", actors)
    enforce(who.ctx, "identity:list_grants")
    with state.db.session() as session:
        rows = roles.list_grants(session, actor_type, actor_id, "system", roles.SYSTEM_ID)
    base = state.identity_url
    return views.collection(
        "roles", [views.role(r, base) for r in rows], f"{base}/system/{actors}/{actor_id}/roles"
    )


@router.put("/system/{actors}/{actor_id}/roles/{role_id}", status_code=204)
def grant_system(
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    _, actor_type = _kinds("projects", actors)
    enforce(who.ctx, "identity:grant")
    with state.db.session() as session:
        roles.grant(session, actor_type, actor_id, "system", roles.SYSTEM_ID, role_id)
    return Response(status_code=204)


@router.head("/system/{actors}/{actor_id}/roles/{role_id}", status_code=204)
@router.get("/system/{actors}/{actor_id}/roles/{role_id}", status_code=204)
def check_system_grant(
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    _, actor_type = _kinds("projects", actors)
    enforce(who.ctx, "identity:check_grant")
    with state.db.session() as session:
        roles.check_grant(session, actor_type, actor_id, "system", roles.SYSTEM_ID, role_id)
    return Response(status_code=204)


@router.delete("/system/{actors}/{actor_id}/roles/{role_id}", status_code=204)
def revoke_system_grant(
    actors: str,
    actor_id: str,
    role_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    _, actor_type = _kinds("projects", actors)
    enforce(who.ctx, "identity:revoke_grant")
    with state.db.session() as session:
        roles.revoke_grant(session, actor_type, actor_id, "system", roles.SYSTEM_ID, role_id)
    return Response(status_code=204)


def _inference(prior: m.Role, implied: list[m.Role], base: str, key: str) -> dict[str, Any]:
    def ref(r: m.Role) -> dict[str, Any]:
        return {"id": r.id, "name": r.name, "links": {"self": f"{base}/roles/{r.id}"}}

    value: Any = ref(implied[0]) if key == "implies_one" else [ref(r) for r in implied]
    return {"prior_role": ref(prior), "implies": value}


@router.put("/roles/{prior_id}/implies/{implied_id}", status_code=201)
def create_inference(
    prior_id: str,
    implied_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_role")
    with state.db.session() as session:
        prior, implied = roles.add_inference(session, prior_id, implied_id)
    return {"role_inference": _inference(prior, [implied], state.identity_url, "implies_one")}


@router.get("/roles/{prior_id}/implies/{implied_id}")
def get_inference(
    prior_id: str,
    implied_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_role")
    with state.db.session() as session:
        prior, implied = roles.get_inference(session, prior_id, implied_id)
    return {"role_inference": _inference(prior, [implied], state.identity_url, "implies_one")}


@router.head("/roles/{prior_id}/implies/{implied_id}", status_code=204)
def check_inference(
    prior_id: str,
    implied_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "identity:get_role")
    with state.db.session() as session:
        roles.get_inference(session, prior_id, implied_id)
    return Response(status_code=204)


@router.delete("/roles/{prior_id}/implies/{implied_id}", status_code=204)
def delete_inference(
    prior_id: str,
    implied_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "identity:delete_role")
    with state.db.session() as session:
        roles.delete_inference(session, prior_id, implied_id)
    return Response(status_code=204)


@router.get("/roles/{prior_id}/implies")
def list_implied(
    prior_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_role")
    with state.db.session() as session:
        prior = roles.get_role(session, prior_id)
        implied = roles.implied_by(session, prior_id)
    base = state.identity_url
    return {
        "role_inference": _inference(prior, implied, base, "implies"),
        "links": {"self": f"{base}/roles/{prior_id}/implies"},
    }


@router.get("/role_inferences")
def list_inferences(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_roles")
    with state.db.session() as session:
        rules = roles.all_inferences(session)
    base = state.identity_url
    return {
        "role_inferences": [_inference(p, i, base, "implies") for p, i in rules],
        "links": {"self": f"{base}/role_inferences"},
    }

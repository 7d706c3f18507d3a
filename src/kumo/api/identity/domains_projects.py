"""/v3/domains and /v3/projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.identity import resources
from kumo.core.identity.common import DEFAULT_DOMAIN_ID, parse_bool_filter
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter()


def caller_domain(who: Caller) -> str:
    """Where a new user, group or project lands when the request names no domain."""
    ctx = who.ctx
    return ctx.domain_id or ctx.project_domain_id or DEFAULT_DOMAIN_ID


@router.get("/domains")
def list_domains(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_domains")
    q = request.query_params
    with state.db.session() as session:
        rows = resources.list_domains(session, q.get("name"), parse_bool_filter(q.get("enabled")))
    base = state.identity_url
    return views.collection("domains", [views.domain(d, base) for d in rows], base + "/domains")


@router.post("/domains", status_code=201)
def create_domain(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_domain")
    with state.db.session() as session:
        domain = resources.create_domain(session, member(body, "domain"))
    return {"domain": views.domain(domain, state.identity_url)}


@router.get("/domains/{domain_id}")
def get_domain(
    domain_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_domain", {"domain_id": domain_id})
    with state.db.session() as session:
        domain = resources.get_domain(session, domain_id)
    return {"domain": views.domain(domain, state.identity_url)}


@router.patch("/domains/{domain_id}")
def update_domain(
    domain_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:update_domain", {"domain_id": domain_id})
    with state.db.session() as session:
        domain = resources.update_domain(session, domain_id, member(body, "domain"))
    return {"domain": views.domain(domain, state.identity_url)}


@router.delete("/domains/{domain_id}", status_code=204)
def delete_domain(
    domain_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:delete_domain", {"domain_id": domain_id})
    with state.db.session() as session:
        resources.delete_domain(session, domain_id)
    return Response(status_code=204)


@router.get("/projects")
def list_projects(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:list_projects")
    q = request.query_params
    tags = q.get("tags")
    filters = {
        "name": q.get("name"),
        "domain_id": q.get("domain_id"),
        "enabled": parse_bool_filter(q.get("enabled")),
        "parent_id": q.get("parent_id"),
        "tags": tags.split(",") if tags else None,
    }
    with state.db.session() as session:
        rows: list[m.Project] | list[m.Domain] = (
            resources.list_domain_projects(session, filters)
            if parse_bool_filter(q.get("is_domain"))
            else resources.list_projects(session, filters)
        )
    base = state.identity_url
    return views.collection("projects", [views.project(p, base) for p in rows], base + "/projects")


@router.post("/projects", status_code=201)
def create_project(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:create_project")
    with state.db.session() as session:
        project = resources.create_any_project(session, member(body, "project"), caller_domain(who))
    return {"project": views.project(project, state.identity_url)}


@router.get("/projects/{project_id}")
def get_project(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_project", {"project_id": project_id})
    with state.db.session() as session:
        project = resources.get_any_project(session, project_id)
    return {"project": views.project(project, state.identity_url)}


@router.patch("/projects/{project_id}")
def update_project(
    project_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:update_project", {"project_id": project_id})
    with state.db.session() as session:
        project = resources.update_any_project(session, project_id, member(body, "project"))
    return {"project": views.project(project, state.identity_url)}


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:delete_project", {"project_id": project_id})
    with state.db.session() as session:
        resources.delete_any_project(session, project_id)
    return Response(status_code=204)


@router.get("/projects/{project_id}/tags")
def list_project_tags(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "identity:get_project", {"project_id": project_id})
    with state.db.session() as session:
        return {"tags": resources.project_tags(session, project_id)}


@router.put("/projects/{project_id}/tags")
def replace_project_tags(
    project_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "identity:update_project", {"project_id": project_id})
    tags = body.get("tags") if isinstance(body, dict) else None
    with state.db.session() as session:
        return {"tags": resources.replace_project_tags(session, project_id, tags)}


@router.delete("/projects/{project_id}/tags", status_code=204)
def delete_project_tags(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    enforce(who.ctx, "identity:update_project", {"project_id": project_id})
    with state.db.session() as session:
        resources.replace_project_tags(session, project_id, [])
    return Response(status_code=204)


@router.put("/projects/{project_id}/tags/{tag}", status_code=201)
def add_project_tag(
    project_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "identity:update_project", {"project_id": project_id})
    with state.db.session() as session:
        resources.add_project_tag(session, project_id, tag)
    return Response(status_code=201)


@router.head("/projects/{project_id}/tags/{tag}", status_code=204)
@router.get("/projects/{project_id}/tags/{tag}", status_code=204)
def check_project_tag(
    project_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "identity:get_project", {"project_id": project_id})
    with state.db.session() as session:
        resources.check_project_tag(session, project_id, tag)
    return Response(status_code=204)


@router.delete("/projects/{project_id}/tags/{tag}", status_code=204)
def remove_project_tag(
    project_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    enforce(who.ctx, "identity:update_project", {"project_id": project_id})
    with state.db.session() as session:
        resources.remove_project_tag(session, project_id, tag)
    return Response(status_code=204)

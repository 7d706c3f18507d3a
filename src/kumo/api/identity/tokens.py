"""/v3/auth: tokens, and what a token may reach (catalog, projects, domains)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.identity import views
from kumo.api.state import AppState, app_state
from kumo.core.errors import Forbidden, NotFound
from kumo.core.identity import auth
from kumo.core.identity.catalog import catalog
from kumo.core.identity.roles import list_assignments
from kumo.db import models as m

router = APIRouter()


def _catalog(state: AppState, project_id: str | None) -> list[dict[str, Any]]:
    with state.db.session() as session:
        return catalog(session, project_id)


def _token_body(state: AppState, token: auth.ValidatedToken, nocatalog: bool) -> dict[str, Any]:
    project_id = token.project.id if token.project else None
    return {"token": views.token(token, None if nocatalog else _catalog(state, project_id))}


@router.post("/auth/tokens")
def issue_token(
    request: Request, body: Any = Depends(json_body), state: AppState = Depends(app_state)
) -> JSONResponse:
    with state.db.session() as session:
        token = auth.authenticate(
            session, state.codec, body, state.config.identity.token_expiration
        )
        validated = auth.validate(session, state.codec, token)
    nocatalog = "nocatalog" in request.query_params
    return JSONResponse(
        _token_body(state, validated, nocatalog),
        status_code=201,
        headers={"X-Subject-Token": token},
    )


def _subject(request: Request, state: AppState) -> tuple[str, auth.ValidatedToken]:
    subject = request.headers.get("X-Subject-Token")
    if not subject:
        raise NotFound("Could not find token: the X-Subject-Token header is missing.")
    try:
        with state.db.session() as session:
            return subject, auth.validate(session, state.codec, subject, state.token_cache)
    except NotFound as exc:
        raise NotFound(f"Could not find token: {exc.message}") from exc


@router.get("/auth/tokens")
def validate_token(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> JSONResponse:
    subject, validated = _subject(request, state)
    nocatalog = "nocatalog" in request.query_params
    return JSONResponse(
        _token_body(state, validated, nocatalog), headers={"X-Subject-Token": subject}
    )


@router.head("/auth/tokens")
def check_token(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    subject, _ = _subject(request, state)
    return Response(status_code=200, headers={"X-Subject-Token": subject})


@router.delete("/auth/tokens", status_code=204)
def revoke_token(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    subject, validated = _subject(request, state)
    ctx = who.ctx
    if not ctx.is_admin and validated.user.id != ctx.user_id:
        raise NotFound("Could not find token.")
    with state.db.session() as session:
        auth.revoke(session, state.codec, subject)
    return Response(status_code=204)


@router.get("/auth/catalog")
def auth_catalog(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    if not who.token.scoped:
        raise Forbidden("A scoped token is required to read the catalog.")
    project_id = who.token.project.id if who.token.project else None
    return {
        "catalog": _catalog(state, project_id),
        "links": {"self": state.identity_url + "/auth/catalog"},
    }


@router.get("/auth/projects")
def auth_projects(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        ids = {
            a.target_id
            for a in list_assignments(session, {"user_id": who.token.user.id, "effective": True})
            if a.target_type == "project"
        }
        projects = list(
            session.scalars(
                select(m.Project)
                .where(m.Project.id.in_(ids), m.Project.enabled.is_(True))
                .order_by(m.Project.name)
            )
        )
    base = state.identity_url
    return views.collection(
        "projects", [views.project(p, base) for p in projects], base + "/auth/projects"
    )


@router.get("/auth/domains")
def auth_domains(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        ids = {
            a.target_id
            for a in list_assignments(session, {"user_id": who.token.user.id, "effective": True})
            if a.target_type == "domain"
        }
        domains = list(
            session.scalars(
                select(m.Domain)
                .where(m.Domain.id.in_(ids), m.Domain.enabled.is_(True))
                .order_by(m.Domain.name)
            )
        )
    base = state.identity_url
    return views.collection(
        "domains", [views.domain(d, base) for d in domains], base + "/auth/domains"
    )

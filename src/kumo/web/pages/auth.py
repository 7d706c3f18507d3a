"""Sign in with Keystone (user, password, domain), sign out, switch project.

Signing in asks Keystone for a token exactly as the openstack CLI does and keeps it in the
session cookie (kumo.web.session). A token Keystone issued without a project (a user with
no default project) is re-scoped to the first of the user's projects, as pages need one.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import csrf
from kumo.web.apiclient import ApiClient, ApiError, SessionExpired
from kumo.web.forms import read_form
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import (
    COOKIE,
    EXPIRED_MESSAGE,
    SIGN_IN,
    clear_session_cookie,
    session_token,
    set_session_cookie,
)
from kumo.web.templating import render

SIGN_OUT = "/auth/logout"
SWITCH_PROJECT = "/auth/project"
DEFAULT_DOMAIN = "Default"
REASONS = {
    "expired": EXPIRED_MESSAGE,
    "signed-out": "You have signed out.",
}

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _sign_in_page(
    request: Request, status: int = 200, error: str = "", fields: dict[str, str] | None = None
) -> Response:
    fields = fields or {}
    context: dict[str, Any] = {
        "title": "Sign in",
        "error": error,
        "notice": REASONS.get(request.query_params.get("reason", ""), ""),
        "username": fields.get("username", ""),
        "domain": fields.get("domain") or DEFAULT_DOMAIN,
    }
    token = csrf.presession_token(request)
    response = render(request, "auth/login.html", {**context, "csrf_token": token}, status)
    csrf.keep_presession_token(request, response, token)
    return response


@router.get(SIGN_IN)
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@router.post(SIGN_IN)
async def sign_in(request: Request) -> Response:
    fields = await read_form(request)
    user = fields.get("username", "").strip()
    password = fields.get("password", "")
    domain = fields.get("domain", "").strip() or DEFAULT_DOMAIN
    if not user or not password:
        return _sign_in_page(request, 400, "Enter your user name and password.", fields)
    async with ApiClient(request, None) as anonymous:
        try:
            issued = await anonymous.password_token(user, password, domain)
        except ApiError as exc:
            return _sign_in_page(request, exc.status, exc.message, fields)
    token = issued.token
    if not issued.body.get("project"):
        async with ApiClient(request, token) as api:
            projects = await api.my_projects()
            if not projects:
                await api.revoke()
                return _sign_in_page(
                    request,
                    403,
                    "You have no role on any project, so there is nothing to "
                    "show; ask an administrator for one.",
                    fields,
                )
            token = (await api.rescope(str(projects[0]["id"]))).token
    response = redirect(request, "/")
    set_session_cookie(request, response, token)
    return response


@router.post(SIGN_OUT)
async def sign_out(request: Request) -> Response:
    """Revoke the token (so a copy of the cookie is worthless too) and forget it."""
    token = request.cookies.get(COOKIE, "")
    if token:
        async with ApiClient(request, token) as api:
            # Already expired or revoked: signed out either way.
            with contextlib.suppress(SessionExpired, ApiError):
                await api.revoke()
    response = redirect(request, SIGN_IN + "?reason=signed-out")
    clear_session_cookie(request, response)
    return response


@router.post(SWITCH_PROJECT)
async def switch_project(request: Request) -> Response:
    """Re-scope the session's token to another of the user's projects."""
    project_id = (await read_form(request)).get("project_id", "")
    async with ApiClient(request, session_token(request)) as api:
        issued = await api.rescope(project_id)
    response = redirect(request, "/")
    set_session_cookie(request, response, issued.token)
    return response

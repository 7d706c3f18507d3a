"""Admin: Keystone's projects, users and role assignments, with Keystone's own calls
(``openstack project create/delete``, ``user create/delete``, ``role add/remove
--project --user``, ``role assignment list --project --names``).

Each change redirects back to its page; a refusal re-renders the page with Keystone's
words in place and Keystone's status. A member gets Keystone's 403 on every page here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import IDENTITY, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import signed_in
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

PROJECTS = "/admin/projects"
USERS = "/admin/users"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

Page = Callable[[Request, ApiClient, str, int], Awaitable[Response]]


async def _projects_page(
    request: Request, api: ApiClient, error: str = "", status: int = 200
) -> Response:
    _, framing = await signed_in(request, api)
    body = await api.get(f"{IDENTITY}/projects")
    projects = sorted(body.get("projects", []), key=lambda p: str(p.get("name", "")))
    context = {**framing, "title": "Projects", "projects": projects, "error": error}
    return render(request, "admin/projects.html", context, status)


async def _users_page(
    request: Request, api: ApiClient, error: str = "", status: int = 200
) -> Response:
    _, framing = await signed_in(request, api)
    # One after the other: a member's refusal is always the users list's words.
    users = await api.get(f"{IDENTITY}/users")
    projects = await api.get(f"{IDENTITY}/projects")
    context = {
        **framing,
        "title": "Users",
        "users": sorted(users.get("users", []), key=lambda u: str(u.get("name", ""))),
        "all_projects": sorted(projects.get("projects", []), key=lambda p: str(p.get("name", ""))),
        "error": error,
    }
    return render(request, "admin/users.html", context, status)


async def _project_page(
    request: Request, api: ApiClient, project_id: str, error: str = "", status: int = 200
) -> Response:
    _, framing = await signed_in(request, api)
    project = (await api.get(f"{IDENTITY}/projects/{segment(project_id)}"))["project"]
    params = {"scope.project.id": project_id, "include_names": "true"}
    assignments, users, roles = await asyncio.gather(
        api.get(f"{IDENTITY}/role_assignments", params=params),
        api.get(f"{IDENTITY}/users"),
        api.get(f"{IDENTITY}/roles"),
    )
    context = {
        **framing,
        "title": project.get("name", project_id),
        "project": project,
        "assignments": [a for a in assignments.get("role_assignments", []) if "user" in a],
        "users": sorted(users.get("users", []), key=lambda u: str(u.get("name", ""))),
        "roles": sorted(roles.get("roles", []), key=lambda r: str(r.get("name", ""))),
        "error": error,
    }
    return render(request, "admin/project.html", context, status)


async def _change(
    request: Request, method: str, path: str, json: Any, back: str, page: Page
) -> Response:
    """One Keystone call; back to ``back``, or ``page`` with Keystone's refusal."""
    async with ApiClient(request, session_token(request)) as api:
        try:
            await api.call(method, path, json=json)
        except ApiError as exc:
            return await page(request, api, exc.message, exc.status)
    return redirect(request, back)


@router.get(PROJECTS)
async def projects(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _projects_page(request, api)


@router.post(PROJECTS)
async def create_project(request: Request) -> Response:
    form = await read_form(request)
    body = {
        "project": {
            "name": form.get("name", "").strip(),
            "description": form.get("description", ""),
            "domain_id": "default",
        }
    }
    return await _change(request, "POST", f"{IDENTITY}/projects", body, PROJECTS, _projects_page)


@router.post(PROJECTS + "/{project_id}/delete")
async def delete_project(request: Request, project_id: str) -> Response:
    path = f"{IDENTITY}/projects/{segment(project_id)}"
    return await _change(request, "DELETE", path, None, PROJECTS, _projects_page)


@router.get(PROJECTS + "/{project_id}")
async def project(request: Request, project_id: str) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _project_page(request, api, project_id)


async def _grant(request: Request, project_id: str, method: str) -> Response:
    form = await read_form(request)
    path = (
        f"{IDENTITY}/projects/{segment(project_id)}/users/{segment(form.get('user_id', ''))}"
        f"/roles/{segment(form.get('role_id', ''))}"
    )

    async def page(request: Request, api: ApiClient, error: str, status: int) -> Response:
        return await _project_page(request, api, project_id, error, status)

    return await _change(request, method, path, None, f"{PROJECTS}/{segment(project_id)}", page)


@router.post(PROJECTS + "/{project_id}/grant")
async def grant_role(request: Request, project_id: str) -> Response:
    return await _grant(request, project_id, "PUT")


@router.post(PROJECTS + "/{project_id}/revoke")
async def revoke_role(request: Request, project_id: str) -> Response:
    return await _grant(request, project_id, "DELETE")


@router.get(USERS)
async def users(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _users_page(request, api)


@router.post(USERS)
async def create_user(request: Request) -> Response:
    form = await read_form(request)
    user: dict[str, Any] = {
        "name": form.get("name", "").strip(),
        "password": form.get("password", ""),
        "domain_id": "default",
    }
    if form.get("default_project_id"):
        user["default_project_id"] = form["default_project_id"]
    return await _change(request, "POST", f"{IDENTITY}/users", {"user": user}, USERS, _users_page)


@router.post(USERS + "/{user_id}/delete")
async def delete_user(request: Request, user_id: str) -> Response:
    path = f"{IDENTITY}/users/{segment(user_id)}"
    return await _change(request, "DELETE", path, None, USERS, _users_page)

"""Admin: one project's quotas in Nova, Neutron and Cinder, read and edited with each
service's own quota calls (``openstack quota show/set <project>`` makes the same three).

Each service's quota set is its own form, so a refusal names one service: the page comes
back with that service's words in place and its status.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, IDENTITY, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import signed_in
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

QUOTAS = "/admin/quotas"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@dataclass(frozen=True)
class Service:
    key: str
    title: str
    path: str  # with {project}
    body_key: str  # the quota set's key in GET and PUT bodies


SERVICES = (
    Service("compute", "Compute (Nova)", COMPUTE + "/os-quota-sets/{project}", "quota_set"),
    Service("network", "Network (Neutron)", "/network/v2.0/quotas/{project}", "quota"),
    Service("volume", "Volume (Cinder)", "/volume/v3/os-quota-sets/{project}", "quota_set"),
)
_BY_KEY = {s.key: s for s in SERVICES}


def _limits(body: dict[str, Any]) -> list[tuple[str, int]]:
    """The numeric limits of a quota set, sorted by name (ids are not limits)."""
    return sorted(
        (k, v)
        for k, v in body.items()
        if k not in ("id", "tenant_id", "project_id")
        and isinstance(v, int)
        and not isinstance(v, bool)
    )


async def _page(
    request: Request,
    api: ApiClient,
    project_id: str,
    error: str = "",
    error_service: str = "",
    status: int = 200,
) -> Response:
    session, framing = await signed_in(request, api)
    project_id = project_id or session.project_id or ""
    # Keystone's list first: a member's refusal is Keystone's words, every time.
    projects = (await api.get(f"{IDENTITY}/projects")).get("projects", [])

    async def quota(service: Service) -> dict[str, Any]:
        try:
            body = await api.get(service.path.format(project=segment(project_id)))
        except ApiError as exc:
            return {"service": service, "limits": [], "error": exc.message}
        return {"service": service, "limits": _limits(body.get(service.body_key, {})), "error": ""}

    sets = await asyncio.gather(*(quota(s) for s in SERVICES))
    for found in sets:
        if error and found["service"].key == error_service:
            found["error"] = error
    context = {
        **framing,
        "title": "Quotas",
        "project_id": project_id,
        "all_projects": sorted(projects, key=lambda p: str(p.get("name", ""))),
        "sets": sets,
    }
    return render(request, "admin/quotas.html", context, status)


@router.get(QUOTAS)
async def quotas(request: Request, project_id: str = Query("", max_length=64)) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _page(request, api, project_id)


def _value(text: str) -> Any:
    """An int when it is one; as typed otherwise, for the service to refuse in its words."""
    try:
        return int(text.strip())
    except ValueError:
        return text


@router.post(QUOTAS + "/{project_id}/{service}")
async def update_quotas(request: Request, project_id: str, service: str) -> Response:
    form = await read_form(request)
    found = _BY_KEY.get(service)
    async with ApiClient(request, session_token(request)) as api:
        if found is None:
            return await _page(request, api, project_id, "No such quota set.", "", 404)
        limits = {
            k.removeprefix("limit."): _value(v) for k, v in form.items() if k.startswith("limit.")
        }
        path = found.path.format(project=segment(project_id))
        try:
            await api.call("PUT", path, json={found.body_key: limits})
        except ApiError as exc:
            return await _page(request, api, project_id, exc.message, service, exc.status)
    return redirect(request, f"{QUOTAS}?{urlencode({'project_id': project_id})}")

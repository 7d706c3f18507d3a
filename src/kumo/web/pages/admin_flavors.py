"""Admin: flavors, as Nova lists them, created and deleted with Nova's own calls
(``openstack flavor list --all``, ``flavor create``, ``flavor delete``).

Listing flavors is open to every user in Nova, so a member sees the list here as the CLI
does; creating and deleting are Nova's admin actions, and a member's attempt shows Nova's
403 words in place.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, COMPUTE_VERSION, ApiClient, segment
from kumo.web.forms import read_form
from kumo.web.layout import signed_in
from kumo.web.routing import DashboardRoute, call_then_redirect
from kumo.web.session import session_token
from kumo.web.templating import render

FLAVORS = "/admin/flavors"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _number(form: dict[str, str], key: str) -> Any:
    """The field as an int when it is one; as typed otherwise, for Nova to refuse in
    its words (the dashboard checks nothing Nova checks)."""
    value = form.get(key, "").strip()
    try:
        return int(value)
    except ValueError:
        return value


async def _page(
    request: Request, api: ApiClient, error: str = "", status: int = 200, form: Any = None
) -> Response:
    _, framing = await signed_in(request, api)
    body = await api.get(
        f"{COMPUTE}/flavors/detail", params={"is_public": "None"}, headers=COMPUTE_VERSION
    )
    flavors = sorted(body.get("flavors", []), key=lambda f: (f.get("ram", 0), f.get("name", "")))
    context = {
        **framing,
        "title": "Flavors",
        "flavors": flavors,
        "error": error,
        "form": form or {},
    }
    return render(request, "admin/flavors.html", context, status)


@router.get(FLAVORS)
async def flavors(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _page(request, api)


@router.post(FLAVORS)
async def create_flavor(request: Request) -> Response:
    form = await read_form(request)
    flavor = {
        "name": form.get("name", "").strip(),
        "vcpus": _number(form, "vcpus"),
        "ram": _number(form, "ram"),
        "disk": _number(form, "disk"),
        "os-flavor-access:is_public": form.get("public") == "on",
    }
    return await call_then_redirect(
        request,
        lambda api: api.call("POST", f"{COMPUTE}/flavors", json={"flavor": flavor}),
        FLAVORS,
        lambda api, exc: _page(request, api, exc.message, exc.status, form),
    )


@router.post(FLAVORS + "/{flavor_id}/delete")
async def delete_flavor(request: Request, flavor_id: str) -> Response:
    return await call_then_redirect(
        request,
        lambda api: api.call("DELETE", f"{COMPUTE}/flavors/{segment(flavor_id)}"),
        FLAVORS,
        lambda api, exc: _page(request, api, exc.message, exc.status),
    )

"""The server page's sections, each a fragment htmx loads on its own: the action log with
its events, the console log, volumes, interfaces, floating IPs, and metadata (view and
edit). One slow or refused API call then costs its section only, shown there in the
API's words, and the overview appears at once.

Every section is the API call the CLI makes for the same view: ``os-instance-actions``
(events at the newest microversion: Nova shows them, tracebacks included, to admins),
``os-getConsoleOutput``, ``os-volume_attachments``, ``os-interface``, Neutron's
floating IPs by port, and the server's metadata calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, COMPUTE_VERSION, ApiClient, ApiError
from kumo.web.forms import read_form
from kumo.web.pages.instances import LIST
from kumo.web.routing import DashboardRoute
from kumo.web.session import session_token
from kumo.web.templating import render

SECTION = LIST + "/{server_id}/section"
METADATA = LIST + "/{server_id}/metadata"
NETWORK_API = "/network/v2.0"
CONSOLE_LENGTHS = (20, 50, 200, 1000)
ACTIONS_SHOWN = 10  # the newest actions get their events read: one call each

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
Loader = Callable[[ApiClient, str, Request], Awaitable[dict[str, Any]]]


def _server_path(server_id: str) -> str:
    return f"{COMPUTE}/servers/{server_id}"


async def _actions(api: ApiClient, server_id: str, request: Request) -> dict[str, Any]:
    base = _server_path(server_id) + "/os-instance-actions"
    listed = (await api.get(base, headers=COMPUTE_VERSION))["instanceActions"]
    newest = sorted(listed, key=lambda a: str(a.get("start_time")), reverse=True)

    async def detail(action: dict[str, Any]) -> dict[str, Any]:
        try:
            body = await api.get(f"{base}/{action['request_id']}", headers=COMPUTE_VERSION)
        except ApiError:
            return {**action, "events": []}
        found: dict[str, Any] = body["instanceAction"]
        return found

    shown = await asyncio.gather(*(detail(a) for a in newest[:ACTIONS_SHOWN]))
    return {"actions": shown, "more": max(0, len(newest) - ACTIONS_SHOWN)}


async def _console(api: ApiClient, server_id: str, request: Request) -> dict[str, Any]:
    length = int(request.query_params.get("length", "50"))
    if length not in CONSOLE_LENGTHS:
        raise ApiError(400, f"Invalid console length: {length}.")
    response = await api.call(
        "POST",
        _server_path(server_id) + "/action",
        json={"os-getConsoleOutput": {"length": length}},
        headers=COMPUTE_VERSION,
    )
    return {"output": response.json().get("output", ""), "length": length}


async def _volumes(api: ApiClient, server_id: str, request: Request) -> dict[str, Any]:
    body = await api.get(_server_path(server_id) + "/os-volume_attachments")
    return {"attachments": body["volumeAttachments"]}


async def _ports(api: ApiClient, server_id: str) -> list[dict[str, Any]]:
    body = await api.get(_server_path(server_id) + "/os-interface")
    found: list[dict[str, Any]] = body["interfaceAttachments"]
    return found


async def _interfaces(api: ApiClient, server_id: str, request: Request) -> dict[str, Any]:
    return {"interfaces": await _ports(api, server_id)}


async def _floating_ips(api: ApiClient, server_id: str, request: Request) -> dict[str, Any]:
    ports = await _ports(api, server_id)
    found = await asyncio.gather(
        *(api.get(f"{NETWORK_API}/floatingips", params={"port_id": p["port_id"]}) for p in ports)
    )
    return {"floating_ips": [ip for body in found for ip in body["floatingips"]]}


async def _metadata(api: ApiClient, server_id: str, request: Request) -> dict[str, Any]:
    body = await api.get(_server_path(server_id) + "/metadata")
    return {"metadata": sorted(body["metadata"].items())}


SECTIONS: dict[str, Loader] = {
    "actions": _actions,
    "console": _console,
    "volumes": _volumes,
    "interfaces": _interfaces,
    "floating-ips": _floating_ips,
    "metadata": _metadata,
}


async def _section(
    request: Request, server_id: str, name: str, error: str = "", **extra: Any
) -> Response:
    """One section's fragment; an API's refusal is shown in it, in the API's words (200:
    htmx swaps 2xx answers only)."""
    context: dict[str, Any] = {
        "server_id": server_id,
        "error": error,
        "lengths": CONSOLE_LENGTHS,
        "section_url": f"{LIST}/{server_id}/section",
        "metadata_url": f"{LIST}/{server_id}/metadata",
        **extra,
    }
    async with ApiClient(request, session_token(request)) as api:
        try:
            context.update(await SECTIONS[name](api, server_id, request))
        except ApiError as exc:
            context["error"] = context["error"] or exc.message
    return render(request, f"instances/section_{name.replace('-', '_')}.html", context)


@router.get(SECTION + "/{name}")
async def section(
    request: Request,
    server_id: str,
    name: str,
    length: int = Query(50, ge=1, le=10000),
) -> Response:
    """One section. ``length`` is the console's; declared here so that a value that is no
    number is a 400 page (kumo.web.routing), the console section checks it is offered."""
    if name not in SECTIONS:
        raise ApiError(404, f"There is no server section '{name}'.")
    return await _section(request, server_id, name)


@router.post(METADATA)
async def set_metadata(request: Request, server_id: str) -> Response:
    """Set one key (``PUT /servers/{id}/metadata/{key}``), or delete it when the form's
    ``delete`` names it; the section again, with Nova's refusal in its words."""
    fields = await read_form(request)
    delete = fields.get("delete", "")
    key = delete or fields.get("key", "").strip()
    error = ""
    async with ApiClient(request, session_token(request)) as api:
        try:
            if not key:
                raise ApiError(400, "Give the metadata a key.")
            path = f"{_server_path(server_id)}/metadata/{quote(key, safe='')}"
            if delete:
                await api.call("DELETE", path)
            else:
                await api.call("PUT", path, json={"meta": {key: fields.get("value", "")}})
        except ApiError as exc:
            error = exc.message
    return await _section(request, server_id, "metadata", error)

"""Floating IPs: the project's floating IPs with their live status, allocating one from an
external network, associating it with a server's port, disassociating and releasing it.

The calls of ``openstack floating ip create/set --port/unset --port/delete``: associating
is ``PUT /floatingips/{id}`` with the port (and its fixed address), chosen as the CLI user
would: a server, then one of its ports (``GET /ports?device_id=<server>``). The table's
rows poll every 2 s, so a floating IP turning ACTIVE or DOWN shows without a reload; the
server of each row is named from Nova, once per server per render.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import csrf
from kumo.web.apiclient import ApiClient, ApiError
from kumo.web.forms import read_form
from kumo.web.pages.neutron import (
    created,
    deleted,
    external_networks,
    framed,
    listed,
    names_by_id,
    owned,
    project_id_of,
    shown,
    text,
    updated,
)
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

LIST = "/project/floating-ips"
ROWS = LIST + "/rows"
POLL_SECONDS = 2
MAX_SERVERS = 1000  # the servers offered to associate with: Nova's default page limit

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def server_of(fip: dict[str, Any]) -> str | None:
    """The server whose port holds the floating IP, from Neutron's ``port_details``."""
    details = fip.get("port_details") or {}
    if str(details.get("device_owner", "")).startswith("compute:") and details.get("device_id"):
        return str(details["device_id"])
    return None


async def _rows(api: ApiClient, project_id: str | None) -> dict[str, Any]:
    """The table's rows: the project's floating IPs, their networks' and servers' names."""
    fips, externals = await asyncio.gather(
        owned(api, "floatingips", project_id), external_networks(api)
    )
    servers = {s for s in (server_of(f) for f in fips) if s}
    server_names = await api.server_names(servers)
    rows = [
        {
            **f,
            "server_id": server_of(f),
            "server_name": server_names.get(server_of(f) or "", ""),
        }
        for f in sorted(fips, key=lambda f: str(f.get("floating_ip_address")))
    ]
    return {"rows": rows, "network_names": names_by_id(externals), "externals": externals}


async def _list_page(
    request: Request, api: ApiClient, error: str = "", status: int = 200
) -> Response:
    context = await framed(request, api, "Floating IPs")
    try:
        found = await _rows(api, context["session"].project_id)
    except ApiError as exc:
        found = {"rows": [], "network_names": {}, "externals": []}
        error, status = error or exc.message, status if error else exc.status
    context.update(
        found,
        error=error,
        list_url=LIST,
        rows_url=ROWS,
        poll=f"every {POLL_SECONDS}s",
    )
    return render(request, "floating_ips/list.html", context, status)


@router.get(LIST)
async def floating_ips(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _list_page(request, api)


@router.get(ROWS)
async def floating_ip_rows(request: Request) -> Response:
    """The rows alone, for the 2 s poll (no frame)."""
    token = session_token(request)
    async with ApiClient(request, token) as api:
        try:
            found = await _rows(api, await project_id_of(api))
        except ApiError as exc:
            found = {"rows": [], "network_names": {}, "error": exc.message}
    # The rows' own forms post without htmx: they carry the session's CSRF token.
    context = {"error": "", "list_url": LIST, "csrf_token": csrf.token_for(token), **found}
    return render(request, "floating_ips/rows.html", context)


@router.post(LIST)
async def allocate(request: Request) -> Response:
    form = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            await created(api, "floatingips", {"floating_network_id": text(form, "network_id")})
        except ApiError as exc:  # e.g. the quota, in Neutron's words
            return await _list_page(request, api, exc.message, exc.status)
    return redirect(request, LIST)


async def _associate_page(
    request: Request,
    api: ApiClient,
    fip_id: str,
    server_id: str,
    error: str = "",
    status: int = 200,
) -> Response:
    context = await framed(request, api, "Associate floating IP")
    try:
        fip = await shown(api, "floatingips", fip_id)
    except ApiError as exc:
        context.update(status=exc.status, message=exc.message, title="Floating IP not shown")
        return render(request, "error.html", context, exc.status)
    servers = (await api.servers({"limit": str(MAX_SERVERS), "sort_key": "display_name"})).items
    choices: list[dict[str, str]] = []
    if server_id:
        for port in await listed(api, "ports", device_id=server_id):
            for ip in port.get("fixed_ips", []):
                if ":" not in str(ip.get("ip_address")):  # floating IPs are IPv4
                    choices.append(
                        {"value": f"{port['id']} {ip['ip_address']}", "ip": ip["ip_address"]}
                    )
    context.update(
        fip=fip,
        servers=servers,
        server_id=server_id,
        choices=choices,
        error=error,
        list_url=LIST,
    )
    return render(request, "floating_ips/associate.html", context, status)


@router.get(LIST + "/{fip_id}/associate")
async def associate_form(
    request: Request, fip_id: str, server_id: str = Query("", max_length=64)
) -> Response:
    """Choose a server, then one of its ports' addresses."""
    async with ApiClient(request, session_token(request)) as api:
        return await _associate_page(request, api, fip_id, server_id.strip())


@router.post(LIST + "/{fip_id}/associate")
async def associate(request: Request, fip_id: str) -> Response:
    form = await read_form(request)
    port_id, _, address = text(form, "port").partition(" ")
    attrs: dict[str, Any] = {"port_id": port_id}
    if address:
        attrs["fixed_ip_address"] = address
    async with ApiClient(request, session_token(request)) as api:
        try:
            await updated(api, "floatingips", fip_id, attrs)
        except ApiError as exc:
            server_id = text(form, "server_id")
            return await _associate_page(request, api, fip_id, server_id, exc.message, exc.status)
    return redirect(request, LIST)


async def _on_list(request: Request, call: Callable[[ApiClient], Awaitable[Any]]) -> Response:
    """One call from the list's buttons: back to the list, or the list with Neutron's words."""
    async with ApiClient(request, session_token(request)) as api:
        try:
            await call(api)
        except ApiError as exc:
            return await _list_page(request, api, exc.message, exc.status)
    return redirect(request, LIST)


@router.post(LIST + "/{fip_id}/disassociate")
async def disassociate(request: Request, fip_id: str) -> Response:
    unset = {"port_id": None}
    return await _on_list(request, lambda api: updated(api, "floatingips", fip_id, unset))


@router.post(LIST + "/{fip_id}/release")
async def release(request: Request, fip_id: str) -> Response:
    return await _on_list(request, lambda api: deleted(api, "floatingips", fip_id))

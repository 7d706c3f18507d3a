"""Admin: the hosts, as Nova's operator APIs show them, and what an operator does to them.

Each host is a row of ``os-hypervisors/detail`` (state, enabled, vCPU/RAM/disk used and
free) with its heartbeat age from kumo's ``/kumo/v1/hosts`` and its servers from Nova's
``servers/detail?all_tenants=1&host=...``, all called together. Enable and disable are
``os-services`` (``openstack compute service set --enable/--disable``); evacuating a down
host is Nova's evacuate action on each of its servers (``openstack server evacuate``),
each server's answer shown, and the table re-reads every few seconds so the moves show
their progress. A member gets the APIs' own 403 words (kumo.web.routing).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import csrf, formatting
from kumo.web.apiclient import COMPUTE, COMPUTE_VERSION, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import signed_in
from kumo.web.routing import DashboardRoute, is_htmx, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

HOSTS = "/admin/hosts"
ROWS = HOSTS + "/rows"
COMPUTE_BINARY = "nova-compute"
SERVERS_SHOWN = 50  # per host; the host's total is running_vms
POLL = "every 5s"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _percent(used: float, total: float) -> int:
    return max(0, min(100, round(100 * used / total))) if total else 0


def _resource(used: Any, total: Any, unit: str) -> dict[str, Any]:
    used_n, total_n = float(used or 0), float(total or 0)
    return {
        "used": int(used_n),
        "total": int(total_n),
        "free": int(total_n - used_n),
        "unit": unit,
        "percent": _percent(used_n, total_n),
    }


async def _hosts(api: ApiClient) -> list[dict[str, Any]]:
    """Every host with its capacity, heartbeat and servers (one call per host for those)."""
    # Nova's list first: a member's refusal is always Nova's words, whatever finishes first.
    hypervisors = await api.get(f"{COMPUTE}/os-hypervisors/detail")
    found = hypervisors.get("hypervisors", [])

    async def servers(name: str) -> list[dict[str, Any]]:
        params = {"all_tenants": "1", "host": name, "limit": str(SERVERS_SHOWN)}
        body = await api.get(f"{COMPUTE}/servers/detail", params=params, headers=COMPUTE_VERSION)
        listed: list[dict[str, Any]] = body.get("servers", [])
        return listed

    kumo_hosts, *on_hosts = await asyncio.gather(
        api.get("/kumo/v1/hosts"), *(servers(h["hypervisor_hostname"]) for h in found)
    )
    heartbeats = {h["name"]: h.get("last_heartbeat_at") for h in kumo_hosts.get("hosts", [])}
    now = dt.datetime.now(dt.UTC)
    rows = []
    for h, on_host in zip(found, on_hosts, strict=True):
        name = h["hypervisor_hostname"]
        beat = heartbeats.get(name)
        rows.append(
            {
                "name": name,
                "state": h.get("state", ""),
                "status": h.get("status", ""),
                "disabled_reason": (h.get("service") or {}).get("disabled_reason") or "",
                "heartbeat": beat or "",
                "heartbeat_age": formatting.age(beat, now) if beat else "never",
                "vcpus": _resource(h.get("vcpus_used"), h.get("vcpus"), ""),
                "ram": _resource(h.get("memory_mb_used"), h.get("memory_mb"), " MiB"),
                "disk": _resource(h.get("local_gb_used"), h.get("local_gb"), " GiB"),
                "running_vms": h.get("running_vms", 0),
                "servers": [
                    {
                        "id": s["id"],
                        "name": s.get("name") or s["id"],
                        "status": s.get("status", ""),
                        "task_state": s.get("OS-EXT-STS:task_state") or "",
                    }
                    for s in on_host
                ],
            }
        )
    return sorted(rows, key=lambda r: str(r["name"]))


@router.get(HOSTS)
async def hosts(request: Request) -> Response:
    """The hosts page (an API's refusal, a member's 403 included, is an error page)."""
    async with ApiClient(request, session_token(request)) as api:
        _, framing = await signed_in(request, api)
        rows = await _hosts(api)
    context = {**framing, "title": "Hosts", "hosts": rows, "rows_url": ROWS, "poll": POLL}
    return render(request, "admin/hosts.html", context)


@router.get(ROWS)
async def host_rows(request: Request) -> Response:
    """The hosts table alone, for the poll that shows state changes and evacuations."""
    token = session_token(request)
    async with ApiClient(request, token) as api:
        rows = await _hosts(api)
    context = {"hosts": rows, "csrf_token": csrf.token_for(token)}
    return render(request, "admin/host_rows.html", context)


async def _set_status(request: Request, host: str, enable: bool) -> Response:
    form = await read_form(request)
    reason = form.get("reason", "").strip()
    if enable:
        action, body = "enable", {"host": host, "binary": COMPUTE_BINARY}
    elif reason:
        action = "disable-log-reason"
        body = {"host": host, "binary": COMPUTE_BINARY, "disabled_reason": reason}
    else:
        action, body = "disable", {"host": host, "binary": COMPUTE_BINARY}
    async with ApiClient(request, session_token(request)) as api:
        await api.call("PUT", f"{COMPUTE}/os-services/{action}", json=body)
    return redirect(request, HOSTS)


@router.post(HOSTS + "/{host}/enable")
async def enable_host(request: Request, host: str) -> Response:
    return await _set_status(request, host, True)


@router.post(HOSTS + "/{host}/disable")
async def disable_host(request: Request, host: str) -> Response:
    return await _set_status(request, host, False)


@router.post(HOSTS + "/{host}/evacuate")
async def evacuate_host(request: Request, host: str) -> Response:
    """Nova's evacuate on every server of ``host`` (the scheduler picks the targets); the
    page lists each server's answer, the API's words for a refusal."""
    async with ApiClient(request, session_token(request)) as api:
        _, framing = await signed_in(request, api)
        params = {"all_tenants": "1", "host": host}
        body = await api.get(f"{COMPUTE}/servers/detail", params=params, headers=COMPUTE_VERSION)
        servers = body.get("servers", [])

        async def evacuate(server: dict[str, Any]) -> dict[str, Any]:
            path = f"{COMPUTE}/servers/{segment(server['id'])}/action"
            try:
                await api.call("POST", path, json={"evacuate": {}}, headers=COMPUTE_VERSION)
            except ApiError as exc:
                return {"server": server, "ok": False, "message": exc.message}
            return {"server": server, "ok": True, "message": "evacuation accepted"}

        results = await asyncio.gather(*(evacuate(s) for s in servers))
    if not is_htmx(request) and not results:
        return redirect(request, HOSTS)
    context = {**framing, "title": f"Evacuating {host}", "host": host, "results": results}
    return render(request, "admin/evacuate.html", context)

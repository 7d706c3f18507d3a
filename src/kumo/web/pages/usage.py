"""Usage of the current project over a period, charted without a chart library.

Every user sees Nova's ``os-simple-tenant-usage/{project}`` (``openstack usage show``):
hours per server. An admin also sees kumo's ``/kumo/v1/usage`` (``kumo usage report``):
every project's hours per dimension and, when prices are configured, cost. The bars
are server-rendered SVG (attributes, no inline styles: the CSP allows them).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, IDENTITY, ApiClient, ApiError, segment
from kumo.web.layout import signed_in
from kumo.web.routing import DashboardRoute
from kumo.web.session import session_token
from kumo.web.templating import render

USAGE = "/project/usage"
PERIODS = {
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(days=7),
    "month": dt.timedelta(days=30),
}
PERIOD_LABELS = {"day": "Last 24 hours", "week": "Last 7 days", "month": "Last 30 days"}
BAR_WIDTH = 400  # px of the longest bar in a chart
# The report's dimensions the admin table shows, in order.
DIMENSIONS = (
    ("running_server_hours", "Running server hours"),
    ("running_vcpu_hours", "Running vCPU hours"),
    ("running_ram_gib_hours", "Running RAM GiB hours"),
    ("stopped_server_hours", "Stopped server hours"),
    ("shelved_server_hours", "Shelved server hours"),
    ("volume_gib_hours", "Volume GiB hours"),
    ("snapshot_gib_hours", "Snapshot GiB hours"),
    ("image_gib_hours", "Image GiB hours"),
    ("floating_ip_hours", "Floating IP hours"),
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def bars(items: list[tuple[str, float]]) -> list[dict[str, Any]]:
    """(label, value) as bars: each bar's width relative to the largest value."""
    top = max((v for _, v in items), default=0.0)
    return [
        {
            "label": label,
            "value": round(value, 2),
            "width": round(BAR_WIDTH * value / top) if top > 0 else 0,
            "y": index * 28,
        }
        for index, (label, value) in enumerate(items)
    ]


async def _admin_report(
    api: ApiClient, period: dict[str, str], project_id: str
) -> tuple[dict[str, Any] | None, str]:
    """kumo's ledger for every project (None for a member: Nova's view is theirs)."""
    try:
        body, projects = await asyncio.gather(
            api.get("/kumo/v1/usage", params=period), api.get(f"{IDENTITY}/projects")
        )
    except ApiError as exc:
        return None, exc.message if exc.status != 403 else ""
    names = {p["id"]: p.get("name", p["id"]) for p in projects.get("projects", [])}
    usage: dict[str, Any] = body["usage"]
    rows = usage.get("projects", [])
    priced = any("cost" in r for r in rows)
    key = "cost" if priced else "running_server_hours"
    chart = bars(
        [(names.get(r["project_id"], r["project_id"]), float(r.get(key, 0))) for r in rows]
    )
    mine = next((r for r in rows if r["project_id"] == project_id), None)
    report = {
        "chart": chart,
        "measure": "Cost" if priced else "Running server hours",
        "dimensions": [(label, round(float((mine or {}).get(k, 0)), 2)) for k, label in DIMENSIONS],
        "cost": (mine or {}).get("cost"),
    }
    return report, ""


@router.get(USAGE)
async def usage(
    request: Request, period: str = Query("week", pattern="^(day|week|month)$")
) -> Response:
    """The project's usage over the chosen period (ending now)."""
    end = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    start = end - PERIODS[period]
    when = {"start": start.isoformat(), "end": end.isoformat()}
    async with ApiClient(request, session_token(request)) as api:
        session, framing = await signed_in(request, api)
        project = session.project_id or ""
        nova_path = f"{COMPUTE}/os-simple-tenant-usage/{segment(project)}"
        error = ""
        try:
            nova = (await api.get(nova_path, params=when)).get("tenant_usage") or {}
        except ApiError as exc:
            nova, error = {}, exc.message
        admin, admin_error = (
            await _admin_report(api, when, project) if session.is_admin else (None, "")
        )
    servers = sorted(
        nova.get("server_usages", []), key=lambda s: float(s.get("hours", 0)), reverse=True
    )
    context = {
        **framing,
        "title": "Usage",
        "period": period,
        "periods": PERIOD_LABELS,
        "start": when["start"],
        "end": when["end"],
        "nova": nova,
        "server_bars": bars([(str(s.get("name", "")), float(s.get("hours", 0))) for s in servers]),
        "admin": admin,
        "error": error or admin_error,
        "bar_width": BAR_WIDTH,
    }
    return render(request, "usage/usage.html", context)

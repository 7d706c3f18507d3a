"""Instances: the project's servers as a live table, and one server's overview.

The list is Nova's own paginated, sorted and filtered ``GET /servers/detail``: the page's
query maps onto Nova's parameters one to one (limit/marker, sort_key/sort_dir, name,
status, tags), so a large project costs one page of rows, never the whole list. The table
body polls every 2 s (htmx) and only the rows are re-rendered: one Nova call with the
page's limit, plus the names of the few flavors and images on it.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import labels
from kumo.web.apiclient import ApiClient, ApiError, Page
from kumo.web.layout import signed_in
from kumo.web.routing import DashboardRoute
from kumo.web.session import session_token
from kumo.web.templating import render

LIST = "/project/instances"
ROWS = LIST + "/rows"
LABEL_TREE = "/project/labels/instances"  # kumo.web.pages.labels
POLL_SECONDS = 1  # the rows alone (one Nova list call): a change shows within ~1 s
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000  # Nova's default max_limit: more is cut there anyway
# The sortable columns and Nova's sort key for each.
SORT_KEYS = {"name": "display_name", "status": "vm_state", "created": "created_at"}
# Nova's server statuses, for the status filter (Nova matches them exactly).
STATUSES = (
    "ACTIVE", "BUILD", "SHUTOFF", "PAUSED", "SUSPENDED", "RESCUE", "RESIZE", "VERIFY_RESIZE",
    "REBOOT", "HARD_REBOOT", "MIGRATING", "SHELVED", "SHELVED_OFFLOADED", "ERROR",
)  # fmt: skip


router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@dataclass(frozen=True)
class Listing:
    """What the list shows: the dashboard's query parameters, as Nova's."""

    name: str = ""
    status: str = ""
    tag: str = ""
    any: str = ""  # labels, comma-separated: a branch of the label tree (Nova's tags-any)
    sort: str = "created"
    dir: str = "desc"
    limit: int = DEFAULT_LIMIT
    marker: str = ""

    def nova_params(self) -> dict[str, str]:
        """The query of Nova's list call for this page."""
        params = {
            "limit": str(self.limit),
            "sort_key": SORT_KEYS[self.sort],
            "sort_dir": self.dir,
        }
        for key, value in (
            ("name", self.name),
            ("status", self.status),
            ("tags", self.tag),
            ("tags-any", self.any),
            ("marker", self.marker),
        ):
            if value:
                params[key] = value
        return params

    @property
    def filtered(self) -> bool:
        return bool(self.name or self.status or self.tag or self.any)

    def query(self, **changes: Any) -> str:
        """This listing's query string with ``changes``; defaults are left out."""
        values = asdict(replace(self, **changes))
        defaults = asdict(Listing())
        return urlencode({k: v for k, v in values.items() if v != defaults[k]})

    def sort_link(self, column: str) -> str:
        """Sorting by ``column``: ascending first, flipped when it is already the key."""
        direction = "desc" if self.sort == column and self.dir == "asc" else "asc"
        return f"{LIST}?{self.query(sort=column, dir=direction, marker='')}"

    def aria_sort(self, column: str) -> str:
        if self.sort != column:
            return "none"
        return "ascending" if self.dir == "asc" else "descending"


def listing(
    name: str = Query("", max_length=255),
    status: str = Query("", max_length=32),
    tag: str = Query("", max_length=255),
    any: str = Query("", max_length=4000),
    sort: str = Query("created", pattern="^(" + "|".join(SORT_KEYS) + ")$"),
    dir: str = Query("desc", pattern="^(asc|desc)$"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    marker: str = Query("", max_length=64),
) -> Listing:
    """The listing of a request's query (a bad value is a 400 page, kumo.web.routing)."""
    return Listing(
        name.strip(),
        status.strip().upper(),
        labels.normalize(tag),
        any.strip(),
        sort,
        dir,
        limit,
        marker,
    )


async def _rows(api: ApiClient, servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a table row shows of each server, with flavor and image names (each name read
    once per request, all together)."""
    flavor_ids = {
        str(s["flavor"]["id"])
        for s in servers
        if isinstance(s.get("flavor"), dict) and "original_name" not in s["flavor"]
    }
    image_ids = {str(s["image"]["id"]) for s in servers if isinstance(s.get("image"), dict)}
    flavors, images = await asyncio.gather(api.flavor_names(flavor_ids), api.image_names(image_ids))
    return [_row(s, flavors, images) for s in servers]


def _row(server: dict[str, Any], flavors: dict[str, str], images: dict[str, str]) -> dict[str, Any]:
    flavor = server.get("flavor") or {}
    image = server.get("image")
    return {
        "id": server["id"],
        "name": server.get("name") or server["id"],
        "status": server.get("status", ""),
        "task_state": server.get("OS-EXT-STS:task_state") or "",
        "addresses": server.get("addresses") or {},
        "flavor": flavor.get("original_name") or flavors.get(str(flavor.get("id")), ""),
        "image": images.get(str(image["id"]), "") if isinstance(image, dict) else "",
        "boot_from_volume": not isinstance(image, dict),
        "host": server.get("OS-EXT-SRV-ATTR:host") or "",
        "tags": server.get("tags") or [],
        "created": server.get("created", ""),
    }


@router.get(LIST)
async def instances(request: Request, page: Listing = Depends(listing)) -> Response:
    """The instances page: frame, filters, and the first render of the live rows."""
    async with ApiClient(request, session_token(request)) as api:
        session, framing = await signed_in(request, api)
        error, status = "", 200
        try:
            found = await api.servers(page.nova_params())
        except ApiError as exc:  # shown in place, in the API's words
            error, status, found = exc.message, exc.status, Page([], None)
        rows = await _rows(api, found.items)
    context = {
        **framing,
        "title": "Instances",
        "listing": page,
        "rows": rows,
        "show_host": session.is_admin,
        "error": error,
        "next_marker": found.next_marker,
        "statuses": STATUSES,
        "rows_url": f"{ROWS}?{page.query()}",
        "poll": f"every {POLL_SECONDS}s",
        "list_url": LIST,
        "label_tree_url": f"{LABEL_TREE}?{urlencode({'any': page.any})}",
    }
    return render(request, "instances/list.html", context, status)


@router.get(ROWS)
async def instance_rows(request: Request, page: Listing = Depends(listing)) -> Response:
    """The table's rows alone, for the 1 s poll: one Nova list call, no frame. Whether the
    host column is there follows the data (Nova shows hosts to admins only)."""
    async with ApiClient(request, session_token(request)) as api:
        try:
            found = await api.servers(page.nova_params())
        except ApiError as exc:
            context = {"error": exc.message, "rows": [], "show_host": False, "listing": page}
            return render(request, "instances/rows.html", context)
        rows = await _rows(api, found.items)
    show_host = any("OS-EXT-SRV-ATTR:host" in s for s in found.items)
    context = {"rows": rows, "show_host": show_host, "listing": page, "error": ""}
    return render(request, "instances/rows.html", context)


@router.get(LIST + "/{server_id}")
async def instance(request: Request, server_id: str) -> Response:
    """One server's overview (a later page adds actions, events and consoles). Another
    project's server is Nova's 404, in Nova's words."""
    async with ApiClient(request, session_token(request)) as api:
        session, framing = await signed_in(request, api)
        context: dict[str, Any] = {**framing, "title": "Instance"}
        try:
            server = await api.server(server_id)
        except ApiError as exc:
            context.update(status=exc.status, message=exc.message, title="Instance not shown")
            return render(request, "error.html", context, exc.status)
        (row,) = await _rows(api, [server])
    context.update(
        title=row["name"],
        server=server,
        row=row,
        show_host=session.is_admin,
        metadata=sorted((server.get("metadata") or {}).items()),
        list_url=LIST,
    )
    return render(request, "instances/detail.html", context)

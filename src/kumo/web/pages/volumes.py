"""Volumes: Cinder v3's volumes and snapshots of the project, and Nova's attachments.

The list and a volume's page re-render their live part every 2 s (htmx) only while
something is in a transitional status (creating, attaching, extending, ...), so a settled
page costs nothing. Every change is the call the openstack CLI makes: ``volume create``
(empty, from an image or from a snapshot), ``volume set --size`` (os-extend), ``server add
volume`` / ``server remove volume`` (Nova's os-volume_attachments), ``volume snapshot
create/delete`` and ``volume delete``; a refusal is shown in place in the API's words.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import csrf, labels
from kumo.web.apiclient import COMPUTE, IMAGE, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import frame
from kumo.web.routing import DashboardRoute, call_then_redirect, redirect
from kumo.web.session import current, session_token
from kumo.web.templating import render

LIST = "/project/volumes"
ROWS = LIST + "/rows"
VOLUME = "/volume/v3"
POLL = "every 2s"
LIMIT = 1000  # Cinder's default max page: lists the form offers are one page of it
DEFAULT_LIMIT = 20
# Cinder's statuses with work in flight: the page polls while one is shown.
TRANSITIONAL = frozenset(
    {
        "creating", "attaching", "detaching", "extending", "deleting", "downloading",
        "uploading", "reserved", "backing-up", "restoring-backup", "retyping", "maintenance",
        "awaiting-transfer",
    }
)  # fmt: skip
SOURCES = ("empty", "image", "snapshot")
# Cinder's volume statuses, for the status filter (Cinder matches them exactly).
STATUSES = (
    "available", "in-use", "creating", "attaching", "detaching", "extending", "deleting",
    "error", "error_deleting", "error_extending", "reserved", "maintenance",
)  # fmt: skip

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def detail_url(volume_id: str) -> str:
    return f"{LIST}/{volume_id}"


def volume_row(volume: dict[str, Any], servers: dict[str, str]) -> dict[str, Any]:
    attachments = [
        {
            "server_id": str(a.get("server_id", "")),
            "server": servers.get(str(a.get("server_id", "")), str(a.get("server_id", ""))),
            "device": a.get("device") or "",
        }
        for a in volume.get("attachments") or []
    ]
    return {
        "id": volume["id"],
        "name": volume.get("name") or volume["id"],
        "status": volume.get("status", ""),
        "size": volume.get("size"),
        "type": volume.get("volume_type") or "",
        "bootable": str(volume.get("bootable", "false")).lower() == "true",
        "attachments": attachments,
        "created": volume.get("created_at", ""),
        "url": detail_url(volume["id"]),
        "labels": labels.volume_labels(volume.get("metadata")),
    }


async def _server_names(api: ApiClient, volumes: list[dict[str, Any]]) -> dict[str, str]:
    """Names of the servers these volumes are attached to (one call each, together)."""
    ids = {
        str(a["server_id"])
        for v in volumes
        for a in v.get("attachments") or []
        if a.get("server_id")
    }

    async def name(server_id: str) -> tuple[str, str]:
        try:
            return server_id, str((await api.server(server_id)).get("name") or server_id)
        except ApiError:
            return server_id, server_id

    return dict(await asyncio.gather(*(name(i) for i in sorted(ids))))


@dataclass(frozen=True)
class Paging:
    """Which page of Cinder's volume list: its own limit, marker and name/status filters,
    and a label (Cinder's metadata filter on the label's key, kumo.web.labels)."""

    limit: int = DEFAULT_LIMIT
    marker: str = ""
    name: str = ""
    status: str = ""
    label: str = ""

    @property
    def filtered(self) -> bool:
        return bool(self.name or self.status or self.label)

    def query(self, **changes: Any) -> str:
        values = asdict(replace(self, **changes))
        defaults = asdict(Paging())
        return urlencode({k: v for k, v in values.items() if v != defaults[k]})


def paging(
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=LIMIT),
    marker: str = Query("", max_length=64),
    name: str = Query("", max_length=255),
    status: str = Query("", max_length=32),
    label: str = Query("", max_length=200),
) -> Paging:
    """The page of a request's query (a bad value is a 400 page, kumo.web.routing)."""
    typed = labels.normalize(label) if label.strip() else ""
    return Paging(limit, marker, name.strip(), status.strip().lower(), typed)


async def _volumes(api: ApiClient, page: Paging) -> tuple[list[dict[str, Any]], str | None]:
    """One page of volumes, and the marker of the next page (None on the last)."""
    params = {"limit": str(page.limit)}
    for key in ("marker", "name", "status"):
        if getattr(page, key):
            params[key] = getattr(page, key)
    if page.label:
        key = labels.volume_label_key(page.label)
        params["metadata"] = json.dumps({key: labels.VOLUME_LABEL_VALUE})
    body = await api.get(f"{VOLUME}/volumes/detail", params=params)
    volumes: list[dict[str, Any]] = body.get("volumes", [])
    names = await _server_names(api, volumes)
    more = any(link.get("rel") == "next" for link in body.get("volumes_links") or [])
    return [volume_row(v, names) for v in volumes], volumes[-1]["id"] if more and volumes else None


async def _snapshots(api: ApiClient, volume_id: str | None = None) -> list[dict[str, Any]]:
    params = {"limit": str(LIMIT)}
    if volume_id:
        params["volume_id"] = volume_id
    body = await api.get(f"{VOLUME}/snapshots/detail", params=params)
    return [
        {
            "id": s["id"],
            "name": s.get("name") or s["id"],
            "status": s.get("status", ""),
            "size": s.get("size"),
            "volume_id": s.get("volume_id", ""),
            "created": s.get("created_at", ""),
        }
        for s in body.get("snapshots", [])
        if not volume_id or s.get("volume_id") == volume_id
    ]


async def _tables(api: ApiClient, page: Paging) -> dict[str, Any]:
    """What volumes/tables.html shows: a page of volumes, the snapshots (each with its
    volume's name where that is on the page), the pager and whether to poll; a refusal
    in the API's words."""
    rows: list[dict[str, Any]] = []
    snapshots: list[dict[str, Any]] = []
    next_marker, error = None, ""
    try:
        (rows, next_marker), snapshots = await asyncio.gather(_volumes(api, page), _snapshots(api))
    except ApiError as exc:
        error = exc.message
    names = {r["id"]: r["name"] for r in rows}
    for s in snapshots:
        s["volume_name"] = names.get(s["volume_id"], s["volume_id"])
    return {
        "rows": rows,
        "snapshots": snapshots,
        "list_error": error,
        "paging": page,
        "next_marker": next_marker,
        "rows_url": f"{ROWS}?{page.query()}" if page.query() else ROWS,
        "poll": POLL if _busy(rows, snapshots) else "",
    }


def _busy(*groups: list[dict[str, Any]]) -> bool:
    return any(item["status"] in TRANSITIONAL for group in groups for item in group)


async def _choices(api: ApiClient) -> dict[str, Any]:
    """What the create form offers: Cinder's types, Glance's active images, the project's
    snapshots (an unreadable list is just not offered)."""

    async def types() -> list[str]:
        body = await api.get(f"{VOLUME}/types")
        return [str(t["name"]) for t in body.get("volume_types", [])]

    async def images() -> list[dict[str, Any]]:
        params = {"status": "active", "limit": "1000", "sort_key": "name", "sort_dir": "asc"}
        body = await api.get(f"{IMAGE}/images", params=params)
        return [{"id": i["id"], "name": i.get("name") or i["id"]} for i in body.get("images", [])]

    async def quietly(call: Any) -> Any:
        try:
            return await call()
        except ApiError:
            return []

    found = await asyncio.gather(quietly(types), quietly(images))
    return {"volume_types": found[0], "images": found[1]}


async def _list_page(
    request: Request,
    api: ApiClient,
    page: Paging,
    *,
    status: int = 200,
    error: str = "",
    fields: dict[str, str] | None = None,
) -> Response:
    session, projects, choices, tables = await asyncio.gather(
        current(api), api.my_projects(), _choices(api), _tables(api, page)
    )
    context = {
        **frame(request, session, projects),
        **choices,
        **tables,
        "title": "Volumes",
        "error": error,
        "fields": fields or {"size": "1", "source": "empty"},
        "sources": SOURCES,
        "statuses": STATUSES,
        "list_url": LIST,
    }
    return render(request, "volumes/list.html", context, status)


@router.get(LIST)
async def volumes(request: Request, page: Paging = Depends(paging)) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _list_page(request, api, page)


@router.get(ROWS)
async def volume_rows(request: Request, page: Paging = Depends(paging)) -> Response:
    """The volumes and snapshots tables alone, for the poll; it stops (no hx-trigger in
    the answer) once nothing is in flight."""
    async with ApiClient(request, session_token(request)) as api:
        tables = await _tables(api, page)
    context = {**tables, "list_url": LIST, "csrf_token": csrf.token_for(session_token(request))}
    return render(request, "volumes/tables.html", context)


def _create_body(fields: dict[str, str]) -> dict[str, Any]:
    size_text = fields.get("size", "").strip()
    volume: dict[str, Any] = {"size": int(size_text) if size_text.isdigit() else size_text}
    if fields.get("name", "").strip():
        volume["name"] = fields["name"].strip()
    if fields.get("volume_type"):
        volume["volume_type"] = fields["volume_type"]
    source = fields.get("source", "empty")
    if source == "image" and fields.get("image_id"):
        volume["imageRef"] = fields["image_id"]
    elif source == "snapshot" and fields.get("snapshot_id"):
        volume["snapshot_id"] = fields["snapshot_id"]
    return {"volume": volume}


@router.post(LIST)
async def create(request: Request) -> Response:
    fields = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            await api.call("POST", f"{VOLUME}/volumes", json=_create_body(fields))
        except ApiError as exc:
            shown = {k: v for k, v in fields.items() if k != "csrf_token"}
            return await _list_page(
                request, api, Paging(), status=exc.status, error=exc.message, fields=shown
            )
    return redirect(request, LIST)


async def _servers(api: ApiClient) -> list[dict[str, str]]:
    """The project's servers, to attach to (Nova decides which can take a volume)."""
    try:
        page = await api.servers(
            {"limit": str(LIMIT), "sort_key": "display_name", "sort_dir": "asc"}
        )
    except ApiError:
        return []
    return [{"id": s["id"], "name": s.get("name") or s["id"]} for s in page.items]


async def _detail(
    request: Request, api: ApiClient, volume_id: str, *, status: int = 200, error: str = ""
) -> Response:
    session, projects = await asyncio.gather(current(api), api.my_projects())
    context: dict[str, Any] = {**frame(request, session, projects), "title": "Volume"}
    try:
        volume = (await api.get(f"{VOLUME}/volumes/{segment(volume_id)}"))["volume"]
    except ApiError as exc:
        context.update(status=exc.status, message=exc.message, title="Volume not shown")
        return render(request, "error.html", context, exc.status)
    names, snapshots, servers = await asyncio.gather(
        _server_names(api, [volume]), _snapshots(api, volume_id), _servers(api)
    )
    row = volume_row(volume, names)
    context.update(_live(row, snapshots))
    context.update(
        title=row["name"],
        volume=volume,
        servers=servers,
        error=error,
        list_url=LIST,
    )
    return render(request, "volumes/detail.html", context, status)


def _live(row: dict[str, Any], snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """What the volume page's live part needs."""
    return {
        "row": row,
        "snapshots": snapshots,
        "live_url": f"{row['url']}/live",
        "poll": POLL if _busy([row], snapshots) else "",
    }


@router.get(LIST + "/{volume_id}")
async def volume(request: Request, volume_id: str) -> Response:
    """One volume; another project's is Cinder's 404, in its words."""
    async with ApiClient(request, session_token(request)) as api:
        return await _detail(request, api, volume_id)


@router.get(LIST + "/{volume_id}/live")
async def volume_live(request: Request, volume_id: str) -> Response:
    """The volume page's status, attachments and snapshots alone, for the poll."""
    async with ApiClient(request, session_token(request)) as api:
        volume = (await api.get(f"{VOLUME}/volumes/{segment(volume_id)}"))["volume"]
        names, snapshots = await asyncio.gather(
            _server_names(api, [volume]), _snapshots(api, volume_id)
        )
    context = {
        **_live(volume_row(volume, names), snapshots),
        "csrf_token": csrf.token_for(session_token(request)),
    }
    return render(request, "volumes/live.html", context)


async def _change(request: Request, volume_id: str, method: str, path: str, body: Any) -> Response:
    """One API call for a volume's page: back to it, or the page with the refusal."""
    return await call_then_redirect(
        request,
        lambda api: api.call(method, path, json=body),
        detail_url(volume_id),
        lambda api, exc: _detail(request, api, volume_id, status=exc.status, error=exc.message),
    )


def _int(value: str) -> int | str:
    """A number field as Cinder's schema expects it; anything else as typed (so Cinder's
    own message says what is wrong with it)."""
    value = value.strip()
    return int(value) if value.isdigit() else value


@router.post(LIST + "/{volume_id}/extend")
async def extend(request: Request, volume_id: str) -> Response:
    new_size = _int((await read_form(request)).get("new_size", ""))
    path = f"{VOLUME}/volumes/{segment(volume_id)}/action"
    return await _change(request, volume_id, "POST", path, {"os-extend": {"new_size": new_size}})


@router.post(LIST + "/{volume_id}/attach")
async def attach(request: Request, volume_id: str) -> Response:
    server_id = (await read_form(request)).get("server_id", "")
    path = f"{COMPUTE}/servers/{segment(server_id)}/os-volume_attachments"
    return await _change(
        request, volume_id, "POST", path, {"volumeAttachment": {"volumeId": volume_id}}
    )


@router.post(LIST + "/{volume_id}/detach")
async def detach(request: Request, volume_id: str) -> Response:
    server_id = (await read_form(request)).get("server_id", "")
    path = f"{COMPUTE}/servers/{segment(server_id)}/os-volume_attachments/{segment(volume_id)}"
    return await _change(request, volume_id, "DELETE", path, None)


@router.post(LIST + "/{volume_id}/snapshots")
async def snapshot(request: Request, volume_id: str) -> Response:
    fields = await read_form(request)
    body: dict[str, Any] = {"volume_id": volume_id, "force": fields.get("force") == "on"}
    if fields.get("name", "").strip():
        body["name"] = fields["name"].strip()
    return await _change(request, volume_id, "POST", f"{VOLUME}/snapshots", {"snapshot": body})


@router.post(LIST + "/{volume_id}/snapshots/{snapshot_id}/delete")
async def delete_snapshot(request: Request, volume_id: str, snapshot_id: str) -> Response:
    path = f"{VOLUME}/snapshots/{segment(snapshot_id)}"
    return await _change(request, volume_id, "DELETE", path, None)


@router.post(LIST + "/{volume_id}/labels")
async def add_label(request: Request, volume_id: str) -> Response:
    """A label is a metadata key of its own (kumo.web.labels): Cinder's metadata merge."""
    label = labels.normalize((await read_form(request)).get("label", ""))
    if not label:
        async with ApiClient(request, session_token(request)) as api:
            return await _detail(request, api, volume_id, status=400, error=labels.EMPTY)
    body = {"metadata": {labels.volume_label_key(label): labels.VOLUME_LABEL_VALUE}}
    path = f"{VOLUME}/volumes/{segment(volume_id)}/metadata"
    return await _change(request, volume_id, "POST", path, body)


@router.post(LIST + "/{volume_id}/labels/remove")
async def remove_label(request: Request, volume_id: str) -> Response:
    key = labels.volume_label_key((await read_form(request)).get("label", ""))
    path = f"{VOLUME}/volumes/{segment(volume_id)}/metadata/{segment(key)}"
    return await _change(request, volume_id, "DELETE", path, None)


@router.post(LIST + "/{volume_id}/delete")
async def delete(request: Request, volume_id: str) -> Response:
    path = f"{VOLUME}/volumes/{segment(volume_id)}"
    return await call_then_redirect(
        request,
        lambda api: api.call("DELETE", path),
        LIST,
        lambda api, exc: _detail(request, api, volume_id, status=exc.status, error=exc.message),
    )

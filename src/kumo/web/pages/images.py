"""Images: Glance v2's list (its own paging, sorting and name/tag filters), one image's
detail with edits (name, visibility: a JSON patch), labels (Glance's tags) and delete.

Creating an image and uploading its data from the browser is kumo.web.pages.image_upload.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import formatting, labels
from kumo.web.apiclient import IMAGE, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import frame
from kumo.web.routing import DashboardRoute, call_then_redirect
from kumo.web.session import current, session_token
from kumo.web.templating import render

LIST = "/project/images"
NEW = LIST + "/new"
IMAGES = f"{IMAGE}/images"
DEFAULT_LIMIT = 20
MAX_LIMIT = 1000  # Glance's api_limit_max: more is cut there anyway
SORT_KEYS = {"name": "name", "status": "status", "size": "size", "created": "created_at"}
VISIBILITIES = ("private", "shared", "community", "public")
JSON_PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@dataclass(frozen=True)
class Listing:
    """What the list shows: the dashboard's query parameters, as Glance's."""

    name: str = ""
    tag: str = ""
    sort: str = "created"
    dir: str = "desc"
    limit: int = DEFAULT_LIMIT
    marker: str = ""

    def glance_params(self) -> list[tuple[str, str]]:
        params = [
            ("limit", str(self.limit)),
            ("sort_key", SORT_KEYS[self.sort]),
            ("sort_dir", self.dir),
        ]
        for key, value in (("name", self.name), ("tag", self.tag), ("marker", self.marker)):
            if value:
                params.append((key, value))
        return params

    @property
    def filtered(self) -> bool:
        return bool(self.name or self.tag)

    def query(self, **changes: Any) -> str:
        values = asdict(replace(self, **changes))
        defaults = asdict(Listing())
        return urlencode({k: v for k, v in values.items() if v != defaults[k]})

    def sort_link(self, column: str) -> str:
        direction = "desc" if self.sort == column and self.dir == "asc" else "asc"
        return f"{LIST}?{self.query(sort=column, dir=direction, marker='')}"

    def aria_sort(self, column: str) -> str:
        if self.sort != column:
            return "none"
        return "ascending" if self.dir == "asc" else "descending"


def listing(
    name: str = Query("", max_length=255),
    tag: str = Query("", max_length=255),
    sort: str = Query("created", pattern="^(" + "|".join(SORT_KEYS) + ")$"),
    dir: str = Query("desc", pattern="^(asc|desc)$"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    marker: str = Query("", max_length=64),
) -> Listing:
    label = labels.normalize(tag) if tag.strip() else ""
    return Listing(name.strip(), label, sort, dir, limit, marker)


def detail_url(image_id: str) -> str:
    return f"{LIST}/{image_id}"


def row(image: dict[str, Any]) -> dict[str, Any]:
    """What the list and the detail page show of an image."""
    return {
        "id": image["id"],
        "name": image.get("name") or image["id"],
        "status": image.get("status", ""),
        "disk_format": image.get("disk_format") or "",
        "container_format": image.get("container_format") or "",
        "size": formatting.size(image.get("size")),
        "virtual_size": formatting.size(image.get("virtual_size")),
        "visibility": image.get("visibility", ""),
        "protected": bool(image.get("protected")),
        "tags": sorted(image.get("tags") or []),
        "created": image.get("created_at", ""),
        "url": detail_url(image["id"]),
    }


async def _frame(request: Request, api: ApiClient, title: str) -> dict[str, Any]:
    session, projects = await asyncio.gather(current(api), api.my_projects())
    return {**frame(request, session, projects), "title": title}


@router.get(LIST)
async def images(request: Request, page: Listing = Depends(listing)) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        context = await _frame(request, api, "Images")
        error, status, found, more = "", 200, [], False
        try:
            body = await api.get(IMAGES, params=page.glance_params())
            found, more = body.get("images", []), "next" in body
        except ApiError as exc:  # shown in place, in Glance's words
            error, status = exc.message, exc.status
    rows = [row(i) for i in found]
    context.update(
        listing=page,
        rows=rows,
        error=error,
        next_marker=rows[-1]["id"] if more and rows else None,
        list_url=LIST,
        new_url=NEW,
    )
    return render(request, "images/list.html", context, status)


async def _detail(
    request: Request, api: ApiClient, image_id: str, *, status: int = 200, error: str = ""
) -> Response:
    context = await _frame(request, api, "Image")
    try:
        image = await api.get(f"{IMAGES}/{segment(image_id)}")
    except ApiError as exc:
        context.update(status=exc.status, message=exc.message, title="Image not shown")
        return render(request, "error.html", context, exc.status)
    shown = row(image)
    context.update(
        title=shown["name"],
        image=image,
        row=shown,
        error=error,
        visibilities=VISIBILITIES,
        list_url=LIST,
        upload_url=f"{detail_url(image_id)}/file",
        properties=sorted(
            (k, v) for k, v in image.items() if k not in _SHOWN and not isinstance(v, dict)
        ),
    )
    return render(request, "images/detail.html", context, status)


# Glance's base attributes the detail page shows in its facts; other keys are properties.
_SHOWN = frozenset(
    (
        "id", "name", "status", "disk_format", "container_format", "size", "virtual_size",
        "visibility", "protected", "tags", "created_at", "updated_at", "owner", "checksum",
        "os_hash_algo", "os_hash_value", "min_disk", "min_ram", "file", "schema", "self",
        "direct_url", "locations", "os_hidden", "stores",
    )
)  # fmt: skip


@router.get(LIST + "/{image_id}")
async def image(request: Request, image_id: str) -> Response:
    """One image; another project's private image is Glance's 404, in its words."""
    async with ApiClient(request, session_token(request)) as api:
        return await _detail(request, api, image_id)


async def _change(request: Request, image_id: str, call: Any) -> Response:
    """Make one change through ``call(api)``; back to the image, or its page with Glance's
    refusal in place."""
    return await call_then_redirect(
        request,
        call,
        detail_url(image_id),
        lambda api, exc: _detail(request, api, image_id, status=exc.status, error=exc.message),
    )


@router.post(LIST + "/{image_id}/edit")
async def edit(request: Request, image_id: str) -> Response:
    """Name and visibility, as ``openstack image set --name --visibility`` sends them."""
    fields = await read_form(request)
    patch = [
        {"op": "replace", "path": "/name", "value": fields.get("name", "").strip()},
        {"op": "replace", "path": "/visibility", "value": fields.get("visibility", "")},
    ]

    async def call(api: ApiClient) -> None:
        await api.call("PATCH", f"{IMAGES}/{segment(image_id)}", json=patch, headers=JSON_PATCH)

    return await _change(request, image_id, call)


@router.post(LIST + "/{image_id}/labels")
async def add_label(request: Request, image_id: str) -> Response:
    """A label is a Glance tag (kumo.web.labels): ``openstack image set --tag``."""
    tag = labels.normalize((await read_form(request)).get("label", ""))

    async def call(api: ApiClient) -> None:
        if not tag:
            raise ApiError(400, labels.EMPTY)
        await api.call("PUT", f"{IMAGES}/{segment(image_id)}/tags/{segment(tag)}")

    return await _change(request, image_id, call)


@router.post(LIST + "/{image_id}/labels/remove")
async def remove_label(request: Request, image_id: str) -> Response:
    tag = (await read_form(request)).get("label", "")

    async def call(api: ApiClient) -> None:
        await api.call("DELETE", f"{IMAGES}/{segment(image_id)}/tags/{segment(tag)}")

    return await _change(request, image_id, call)


@router.post(LIST + "/{image_id}/delete")
async def delete(request: Request, image_id: str) -> Response:
    path = f"{IMAGES}/{segment(image_id)}"
    return await call_then_redirect(
        request,
        lambda api: api.call("DELETE", path),
        LIST,
        lambda api, exc: _detail(request, api, image_id, status=exc.status, error=exc.message),
    )

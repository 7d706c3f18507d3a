"""Creating an image and uploading its data from the browser, as ``openstack image create
--file`` does it: Glance's create call for the record, then its ``PUT .../file``.

The data never rests in the dashboard: the browser's request body is passed to Glance chunk
by chunk as it arrives (``request.stream()`` as httpx's request content), so an image of
any size costs a few chunks of memory, and Glance's own checks (size limit, the data's
format against ``disk_format``, no backing files) answer the browser in Glance's words.
The browser side (static/image-upload.js) sends the file with XMLHttpRequest and shows its
``upload.onprogress`` on a <progress> element; the two routes answer it in JSON.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from kumo.web.apiclient import IMAGE, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import frame
from kumo.web.pages.images import IMAGES, LIST, NEW, VISIBILITIES, detail_url
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import current, session_token
from kumo.web.templating import render

SCHEMA = f"{IMAGE}/schemas/image"
OCTETS = "application/octet-stream"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def wants_json(request: Request) -> bool:
    """The upload script asks for JSON; a form posted without it gets pages."""
    return request.headers.get("accept", "").startswith("application/json")


async def _choices(api: ApiClient) -> dict[str, list[str]]:
    """Glance's accepted disk and container formats, from its image schema (so the form
    offers exactly what Glance takes)."""
    properties = (await api.get(SCHEMA)).get("properties", {})

    def enum(key: str) -> list[str]:
        return [str(v) for v in properties.get(key, {}).get("enum", []) if v]

    return {"disk_formats": enum("disk_format"), "container_formats": enum("container_format")}


async def _form(
    request: Request,
    api: ApiClient,
    *,
    status: int = 200,
    error: str = "",
    fields: dict[str, str] | None = None,
) -> Response:
    session, projects, choices = await asyncio.gather(
        current(api), api.my_projects(), _choices(api)
    )
    context = {
        **frame(request, session, projects),
        **choices,
        "title": "Create an image",
        "error": error,
        "fields": fields or {"disk_format": "qcow2", "container_format": "bare"},
        "visibilities": VISIBILITIES,
        "list_url": LIST,
        "create_url": LIST,
    }
    return render(request, "images/new.html", context, status)


@router.get(NEW)
async def new_image(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _form(request, api)


def _create_body(fields: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"name": fields.get("name", "").strip()}
    for key in ("disk_format", "container_format", "visibility"):
        if fields.get(key):
            body[key] = fields[key]
    tags = [t.strip() for t in fields.get("tags", "").split(",") if t.strip()]
    if tags:
        body["tags"] = tags
    return body


@router.post(LIST)
async def create(request: Request) -> Response:
    """Glance's create call. For the upload script: the new image's data URL in JSON; for a
    plain form: the new image's page (queued, its data to upload from there)."""
    fields = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            response = await api.call("POST", IMAGES, json=_create_body(fields))
        except ApiError as exc:
            if wants_json(request):
                return JSONResponse({"message": exc.message}, exc.status)
            shown = {k: v for k, v in fields.items() if k != "csrf_token"}
            return await _form(request, api, status=exc.status, error=exc.message, fields=shown)
    made = response.json()
    url = detail_url(str(made["id"]))
    if wants_json(request):
        body = {"id": made["id"], "url": url, "upload_url": f"{url}/file"}
        return JSONResponse(body, 201)
    return redirect(request, url)


async def _passed_on(request: Request) -> Any:
    """The browser's body, chunk by chunk, as it arrives."""
    async for chunk in request.stream():
        if chunk:
            yield chunk


@router.put(LIST + "/{image_id}/file")
async def upload(request: Request, image_id: str) -> Response:
    """Stream the request body into Glance's ``PUT /v2/images/{id}/file``; answer the
    image's status, or Glance's refusal in its words (status and message, JSON)."""
    headers = {"Content-Type": OCTETS}
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        headers["Content-Length"] = declared  # Glance refuses an over-limit size unread
    async with ApiClient(request, session_token(request)) as api:
        try:
            data_url = f"{IMAGES}/{segment(image_id)}/file"
            await api.call("PUT", data_url, headers=headers, content=_passed_on(request))
            image = await api.get(f"{IMAGES}/{segment(image_id)}")
        except ApiError as exc:
            return JSONResponse({"message": exc.message}, exc.status)
    return JSONResponse(
        {
            "id": image["id"],
            "name": image.get("name") or image["id"],
            "status": image.get("status"),
            "size": image.get("size"),
            "url": detail_url(image_id),
        }
    )

"""Key pairs: Nova's ``os-keypairs`` of the signed-in user: list, create, import, delete.

A created key pair's private key exists once, in Nova's answer to the create call; the
dashboard hands it to the browser in that one response (a download link whose data is the
key, served with ``Cache-Control: no-store`` so neither the browser's cache nor a history
step shows it again) and keeps it nowhere: no later page, no log line can contain it.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.layout import frame
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import current, session_token
from kumo.web.templating import render

LIST = "/project/key-pairs"
IMPORT = LIST + "/import"
KEYPAIRS = f"{COMPUTE}/os-keypairs"
# Nova 2.2 adds the key type (ssh or x509) and answers a create with 201. A fixed version,
# not "latest": from 2.92 on Nova no longer generates keys, and this page offers that.
KEYPAIR_VERSION = {"OpenStack-API-Version": "compute 2.2"}
TYPES = ("ssh", "x509")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def delete_url(name: str) -> str:
    return f"{LIST}/{quote(name, safe='')}/delete"


async def _page(
    request: Request,
    api: ApiClient,
    *,
    status: int = 200,
    error: str = "",
    fields: dict[str, str] | None = None,
    created: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The key pairs page; ``error`` (the API's words) shown by the forms, ``created`` the
    one-time private key of a key pair just made."""
    session, projects = await asyncio.gather(current(api), api.my_projects())
    listed: list[dict[str, Any]] = []
    list_error = ""
    try:
        body = await api.get(KEYPAIRS, headers=KEYPAIR_VERSION)
        listed = [item["keypair"] for item in body.get("keypairs", [])]
    except ApiError as exc:
        list_error = exc.message
        status = status if status != 200 else exc.status
    context = {
        **frame(request, session, projects),
        "title": "Key pairs",
        "keypairs": sorted(listed, key=lambda k: str(k.get("name", ""))),
        "list_error": list_error,
        "error": error,
        "fields": fields or {},
        "types": TYPES,
        "created": created,
        "list_url": LIST,
        "import_url": IMPORT,
        "delete_url": delete_url,
    }
    return render(request, "keypairs/list.html", context, status, headers)


@router.get(LIST)
async def keypairs(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _page(request, api)


def _key_request(fields: dict[str, str], *, imported: bool) -> dict[str, Any]:
    keypair: dict[str, Any] = {"name": fields.get("name", "").strip()}
    if fields.get("type") in TYPES:
        keypair["type"] = fields["type"]
    if imported:
        keypair["public_key"] = fields.get("public_key", "")
    return {"keypair": keypair}


@router.post(LIST)
async def create(request: Request) -> Response:
    """Nova generates the key pair; its private key goes back in this response only."""
    fields = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            response = await api.call(
                "POST", KEYPAIRS, json=_key_request(fields, imported=False), headers=KEYPAIR_VERSION
            )
        except ApiError as exc:
            shown = {k: v for k, v in fields.items() if k != "csrf_token"}
            return await _page(request, api, status=exc.status, error=exc.message, fields=shown)
        made = response.json()["keypair"]
        private = str(made.get("private_key") or "")
        created = {
            "name": str(made["name"]),
            "file": f"{made['name']}.pem",
            "href": "data:application/x-pem-file;base64,"
            + base64.b64encode(private.encode()).decode(),
        }
        return await _page(request, api, created=created, headers=NO_STORE)


@router.post(IMPORT)
async def import_key(request: Request) -> Response:
    fields = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            await api.call(
                "POST", KEYPAIRS, json=_key_request(fields, imported=True), headers=KEYPAIR_VERSION
            )
        except ApiError as exc:
            shown = {k: v for k, v in fields.items() if k != "csrf_token"}
            shown["form"] = "import"
            return await _page(request, api, status=exc.status, error=exc.message, fields=shown)
    return redirect(request, LIST)


@router.post(LIST + "/{name}/delete")
async def delete(request: Request, name: str) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        try:
            await api.call("DELETE", f"{KEYPAIRS}/{segment(name)}", headers=KEYPAIR_VERSION)
        except ApiError as exc:
            return await _page(request, api, status=exc.status, error=exc.message)
    return redirect(request, LIST)

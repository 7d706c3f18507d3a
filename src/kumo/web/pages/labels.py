"""Labels on servers: the label editor of the server page and the label tree of the
instances list (kumo.web.labels says how labels are Nova's tags, nested with ``:``).

Adding and removing are Nova's own ``PUT``/``DELETE /servers/{id}/tags/{tag}`` (compute
2.26, as ``openstack server set --tag`` / ``server unset --tag``); Nova's refusal (a
server that is building, a tag with ``,``, the 50-tag limit) is shown in the editor in
Nova's words. The tree is read from one Nova list call (its largest page) and loaded
after the list, so the list never waits for it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import csrf, labels
from kumo.web.apiclient import COMPUTE, COMPUTE_VERSION, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.pages.instances import LABEL_TREE, LIST, MAX_LIMIT
from kumo.web.routing import DashboardRoute, is_htmx, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

EDITOR_ID = "server-labels"


def _tags_path(server_id: str, tag: str | None = None) -> str:
    path = f"{COMPUTE}/servers/{segment(server_id)}/tags"
    return path if tag is None else f"{path}/{segment(tag)}"


def editor_context(server_id: str, tags: list[str], token: str, error: str = "") -> dict[str, Any]:
    """What labels/server_editor.html needs (the server page includes it too)."""
    base = f"{LIST}/{segment(server_id)}/labels"
    return {
        "editor_id": EDITOR_ID,
        "labels": sorted(tags),
        "add_url": base,
        "remove_url": base + "/remove",
        "csrf_token": csrf.token_for(token),
        "error": error,
    }


async def _change(request: Request, server_id: str, method: str) -> Response:
    """Add (PUT) or remove (DELETE) the posted label; the editor again, or the page."""
    form = await read_form(request)
    label = form.get("label", "")
    token = session_token(request)
    async with ApiClient(request, token) as api:
        error = ""
        try:
            tag = labels.normalize(label) if method == "PUT" else label
            await api.call(method, _tags_path(server_id, tag), headers=COMPUTE_VERSION)
        except ApiError as exc:
            if not is_htmx(request):
                raise
            error = exc.message
        if not is_htmx(request):
            return redirect(request, f"{LIST}/{segment(server_id)}")
        found = await api.get(_tags_path(server_id), headers=COMPUTE_VERSION)
    context = editor_context(server_id, found.get("tags", []), token, error)
    return render(request, "labels/server_editor.html", context, 200)


@router.post(LIST + "/{server_id}/labels")
async def add_label(request: Request, server_id: str) -> Response:
    return await _change(request, server_id, "PUT")


@router.post(LIST + "/{server_id}/labels/remove")
async def remove_label(request: Request, server_id: str) -> Response:
    return await _change(request, server_id, "DELETE")


@router.get(LABEL_TREE)
async def instance_label_tree(request: Request, any: str = Query("", max_length=4000)) -> Response:
    """The tree of the labels on the project's servers (Nova's first page, up to its
    largest), each level a link to the list filtered by its branch."""
    async with ApiClient(request, session_token(request)) as api:
        error = ""
        try:
            found = await api.get(
                f"{COMPUTE}/servers/detail",
                params={"limit": str(MAX_LIMIT)},
                headers=COMPUTE_VERSION,
            )
            servers = found.get("servers", [])
        except ApiError as exc:
            error, servers = exc.message, []
    nodes = labels.tree(t for s in servers for t in s.get("tags") or [])

    def link(node: labels.Node) -> str:
        return f"{LIST}?{urlencode({'any': ','.join(node.labels)})}"

    context = {"nodes": nodes, "link": link, "current": any, "error": error}
    return render(request, "labels/tree.html", context)

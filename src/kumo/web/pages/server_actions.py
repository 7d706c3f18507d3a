"""Server actions: the buttons of the detail page and of each row's menu, and the small
pages that ask for an action's input first (resize's flavor, a snapshot's name, the
confirmation of a delete).

Every action is one Nova call with the session's token, exactly what the openstack CLI
sends (``POST /servers/{id}/action`` or ``DELETE /servers/{id}``). Which buttons are shown
comes from kumo.web.server_states; Nova decides what runs, and its refusal (409 for a
state, 403 for a policy) is shown in place in its own words. htmx posts get a fragment
for the page's result region (and an event that refreshes the detail page's state at
once); a plain form post (no JavaScript) is redirected, or gets the page with the error.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, COMPUTE_VERSION, ApiClient, ApiError
from kumo.web.forms import read_form
from kumo.web.layout import frame
from kumo.web.pages.instances import LIST
from kumo.web.routing import DashboardRoute, error_page, is_htmx, redirect
from kumo.web.server_states import ACTIONS, Action, offered, request_body
from kumo.web.session import current, session_token
from kumo.web.templating import render

SERVER = LIST + "/{server_id}"
PANEL = SERVER + "/panel"
ACTION = SERVER + "/action/{slug}"
# The event an action's htmx answer fires, so the detail page's state panel reloads now
# rather than at its next poll.
CHANGED_EVENT = "kumo-server-changed"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def server_url(server_id: str) -> str:
    return f"{LIST}/{server_id}"


def action_url(server_id: str, slug: str) -> str:
    return f"{LIST}/{server_id}/action/{slug}"


def _next_url(fields: dict[str, str], server_id: str) -> str:
    """Where a plain form post returns: the given page if it is one of the instances
    pages (never another site: an open redirect), else the server's page."""
    wanted = fields.get("next", "")
    if wanted.startswith(LIST) and "//" not in wanted and "\\" not in wanted:
        return wanted
    return server_url(server_id)


def _action(slug: str) -> Action:
    found = ACTIONS.get(slug)
    if found is None:
        raise ApiError(404, f"There is no server action '{slug}'.")
    return found


async def run(api: ApiClient, server_id: str, action: Action, fields: dict[str, str]) -> None:
    """The action's one Nova call (ApiError, in Nova's words, if refused)."""
    if action.slug == "delete":
        await api.call("DELETE", f"{COMPUTE}/servers/{server_id}", headers=COMPUTE_VERSION)
        return
    await api.call(
        "POST",
        f"{COMPUTE}/servers/{server_id}/action",
        json=request_body(action, fields),
        headers=COMPUTE_VERSION,
    )


def _done_message(action: Action, name: str) -> str:
    if action.slug == "delete":
        return f"Deleting {name}."
    return f"{action.label} requested for {name}."


@router.get(PANEL)
async def panel(request: Request, server_id: str) -> Response:
    """The detail page's live part: status, task and the actions offered now (polled)."""
    async with ApiClient(request, session_token(request)) as api:
        session, server = await asyncio.gather(current(api), api.server(server_id))
    return render(request, "instances/panel.html", _panel_context(server, session.is_admin))


def _panel_context(server: dict[str, Any], is_admin: bool) -> dict[str, Any]:
    task = server.get("OS-EXT-STS:task_state") or ""
    status = str(server.get("status", ""))
    return {
        "server_id": server["id"],
        "server_name": server.get("name") or server["id"],
        "status": status,
        "task_state": task,
        "actions": offered(status, task, is_admin),
        # Why a server is in ERROR (e.g. "No valid host was found"), in Nova's words.
        "fault": str((server.get("fault") or {}).get("message", "")),
        "next": server_url(server["id"]),
    }


@router.get(ACTION)
async def action_form(request: Request, server_id: str, slug: str) -> Response:
    """The page an action with input shows first; an action without one needs none."""
    action = _action(slug)
    if not action.form:
        return redirect(request, server_url(server_id))
    return await _form_page(request, server_id, action, "", 200)


async def _form_page(
    request: Request, server_id: str, action: Action, error: str, status: int
) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        session, projects, server = await asyncio.gather(
            current(api), api.my_projects(), api.server(server_id)
        )
        flavors: list[dict[str, Any]] = []
        if action.form == "flavor":
            body = await api.get(f"{COMPUTE}/flavors/detail")
            flavors = sorted(body["flavors"], key=lambda f: (f["vcpus"], f["ram"], f["name"]))
    name = server.get("name") or server_id
    context = {
        **frame(request, session, projects),
        "title": f"{action.label}: {name}",
        "action": action,
        "server": server,
        "server_name": name,
        "current_flavor": (server.get("flavor") or {}).get("original_name", ""),
        "flavors": flavors,
        "error": error,
        "post_url": action_url(server_id, action.slug),
        "server_url": server_url(server_id),
        "list_url": LIST,
        "next": LIST if action.slug == "delete" else server_url(server_id),
        "default_name": f"{name}-snapshot",
    }
    return render(request, "instances/action_form.html", context, status)


@router.post(ACTION)
async def perform(request: Request, server_id: str, slug: str) -> Response:
    """Run one action: a fragment for htmx (the API's words in place on refusal), a
    redirect for a plain form, or the action's own page with the refusal in place."""
    action = _action(slug)
    fields = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            await run(api, server_id, action, fields)
        except ApiError as exc:
            if is_htmx(request):
                # htmx swaps 2xx answers only: the refusal's status is in the fragment.
                context = {"ok": False, "message": exc.message, "status": exc.status}
                return render(request, "instances/action_result.html", context)
            if action.form:
                return await _form_page(request, server_id, action, exc.message, exc.status)
            return error_page(request, exc.status, f"{action.label} refused", exc.message)
    name = fields.get("server_name") or server_id
    if is_htmx(request):
        context = {"ok": True, "message": _done_message(action, name), "status": 202}
        return render(
            request,
            "instances/action_result.html",
            context,
            headers={"HX-Trigger": CHANGED_EVENT},
        )
    return redirect(request, _next_url(fields, server_id))

"""Launch instances in three screens: (1) source and flavor, name and count; (2) networks,
security groups and key pair; (3) review, with a quota preview and the exact request.

Each screen is a POST of the previous one (CSRF checked like any other) carrying the draft
(kumo.web.launch_draft) in a hidden field, so Back and Next keep every choice and nothing
is stored server-side. The review reads Nova's own limits and usage (``GET /limits``) and
refuses up front what would exceed them; Launch sends the request shown, and Nova's
refusal (quota, no valid host, a bad value) is shown on the review in its words.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, COMPUTE_VERSION, IMAGE, ApiClient, ApiError
from kumo.web.forms import read_form, read_form_list
from kumo.web.launch_draft import Draft, DraftError
from kumo.web.layout import frame
from kumo.web.pages.instances import LIST
from kumo.web.routing import DashboardRoute, redirect
from kumo.web.session import Session, current, session_token
from kumo.web.templating import render

LAUNCH = LIST + "/launch"
SOURCE = LAUNCH + "/source"
NETWORK = LAUNCH + "/network"
REVIEW = LAUNCH + "/review"
NETWORK_API = "/network/v2.0"
VOLUME_API = "/volume/v3"
SCREENS = ("Source and flavor", "Network and access", "Review and launch")
# (label, Nova's limit, Nova's usage, what one instance of the flavor adds)
QUOTAS = (
    ("Instances", "maxTotalInstances", "totalInstancesUsed", lambda f: 1),
    ("vCPUs", "maxTotalCores", "totalCoresUsed", lambda f: int(f.get("vcpus", 0))),
    ("RAM (MB)", "maxTotalRAMSize", "totalRAMUsed", lambda f: int(f.get("ram", 0))),
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


async def _items(api: ApiClient, path: str, key: str, params: Any = None) -> list[dict[str, Any]]:
    """A list the screen offers; one the caller may not read is offered empty (the
    screen says so) rather than failing the whole wizard."""
    try:
        found: list[dict[str, Any]] = (await api.get(path, params=params))[key]
    except ApiError:
        return []
    return found


async def _screen(
    request: Request,
    api: ApiClient,
    session: Session,
    screen: int,
    draft: Draft,
    error: str = "",
    status: int = 200,
) -> Response:
    projects = await api.my_projects()
    context: dict[str, Any] = {
        **frame(request, session, projects),
        "title": "Launch instances",
        "screen": screen,
        "screens": SCREENS,
        "draft": draft,
        "draft_json": draft.to_json(),
        "error": error,
        "urls": {"source": SOURCE, "network": NETWORK, "review": REVIEW, "launch": LAUNCH},
        "list_url": LIST,
    }
    if screen == 1:
        context.update(await _source_choices(api))
    elif screen == 2:
        context.update(await _network_choices(api, session, draft))
    else:
        context.update(await _review(api, draft))
        if context["over"] and not error:
            error = "This launch would exceed the project's quota: " + ", ".join(context["over"])
            context["error"] = error
    return render(request, "instances/launch.html", context, status)


async def _source_choices(api: ApiClient) -> dict[str, Any]:
    images, volumes, flavors = await asyncio.gather(
        _items(api, f"{IMAGE}/images", "images", {"status": "active", "limit": "200"}),
        _items(api, f"{VOLUME_API}/volumes/detail", "volumes", {"status": "available"}),
        _items(api, f"{COMPUTE}/flavors/detail", "flavors"),
    )
    return {
        "images": sorted(images, key=lambda i: str(i.get("name") or i["id"])),
        "volumes": sorted(volumes, key=lambda v: str(v.get("name") or v["id"])),
        "flavors": sorted(flavors, key=lambda f: (f["vcpus"], f["ram"], f["disk"], f["name"])),
    }


async def _network_choices(api: ApiClient, session: Session, draft: Draft) -> dict[str, Any]:
    params = {"project_id": session.project_id} if session.project_id else None
    networks, groups, keypairs = await asyncio.gather(
        _items(api, f"{NETWORK_API}/networks", "networks"),
        _items(api, f"{NETWORK_API}/security-groups", "security_groups", params),
        _items(api, f"{COMPUTE}/os-keypairs", "keypairs"),
    )
    networks.sort(key=lambda n: (bool(n.get("router:external")), str(n.get("name"))))
    if not draft.networks_chosen:  # the first visit: Nova's and the common defaults
        own = [n["id"] for n in networks if not n.get("router:external")]
        draft.networks = own[:1] if len(own) == 1 else []
        draft.security_groups = (
            ["default"] if any(g.get("name") == "default" for g in groups) else []
        )
    return {
        "networks": networks,
        "security_groups": sorted({str(g.get("name")) for g in groups}),
        "keypairs": sorted(str(k["keypair"]["name"]) for k in keypairs),
    }


async def _review(api: ApiClient, draft: Draft) -> dict[str, Any]:
    """The request and what it adds to the project's usage against its limits."""
    try:
        limits, flavor = await asyncio.gather(
            api.get(f"{COMPUTE}/limits"), api.get(f"{COMPUTE}/flavors/{draft.flavor}")
        )
    except ApiError as exc:
        return {"quota": [], "over": [], "quota_error": exc.message, **_request(draft)}
    absolute = limits["limits"]["absolute"]
    rows, over = [], []
    for label, limit_key, used_key, per_instance in QUOTAS:
        limit = int(absolute.get(limit_key, -1))
        used = int(absolute.get(used_key, 0))
        adds = per_instance(flavor["flavor"]) * draft.count
        exceeded = limit >= 0 and used + adds > limit
        rows.append({"label": label, "used": used, "adds": adds, "limit": limit, "over": exceeded})
        if exceeded:
            over.append(f"{label} {used} + {adds} > {limit}")
    return {"quota": rows, "over": over, "quota_error": "", **_request(draft)}


def _request(draft: Draft) -> dict[str, Any]:
    return {"request_json": json.dumps(draft.nova_request(), indent=2)}


async def _posted_draft(request: Request) -> tuple[Draft, str]:
    """The draft with the fields of the screen that was posted (its number in ``from``);
    the error of a screen-1 value that cannot be used."""
    form = await read_form(request)
    draft = Draft.from_json(form.get("draft", ""))
    came_from = form.get("from", "")
    if came_from == "1":
        try:
            draft.take_source(form)
        except DraftError as exc:
            return draft, str(exc)
    elif came_from == "2":
        draft.take_networks(
            await read_form_list(request, "networks"),
            await read_form_list(request, "security_groups"),
            form.get("key_name", ""),
        )
    return draft, ""


@router.get(LAUNCH)
async def launch_start(request: Request) -> Response:
    """Screen 1, empty."""
    async with ApiClient(request, session_token(request)) as api:
        return await _screen(request, api, await current(api), 1, Draft())


@router.post(SOURCE)
async def launch_source(request: Request) -> Response:
    """Screen 1 again (Back), with the choices so far."""
    draft, _ = await _posted_draft(request)
    async with ApiClient(request, session_token(request)) as api:
        return await _screen(request, api, await current(api), 1, draft)


@router.post(NETWORK)
async def launch_network(request: Request) -> Response:
    """Screen 2, once screen 1 has what a request needs (else screen 1 says what)."""
    draft, error = await _posted_draft(request)
    if not error:
        try:
            draft.check_source()
        except DraftError as exc:
            error = str(exc)
    async with ApiClient(request, session_token(request)) as api:
        session = await current(api)
        if error:
            return await _screen(request, api, session, 1, draft, error, 400)
        return await _screen(request, api, session, 2, draft)


@router.post(REVIEW)
async def launch_review(request: Request) -> Response:
    """Screen 3: the quota preview and the request."""
    draft, _ = await _posted_draft(request)
    async with ApiClient(request, session_token(request)) as api:
        return await _screen(request, api, await current(api), 3, draft)


@router.post(LAUNCH)
async def launch(request: Request) -> Response:
    """Send the request; the instances list shows the new rows turning ACTIVE."""
    draft, _ = await _posted_draft(request)
    async with ApiClient(request, session_token(request)) as api:
        try:
            draft.check_source()
            await api.call(
                "POST", f"{COMPUTE}/servers", json=draft.nova_request(), headers=COMPUTE_VERSION
            )
        except DraftError as exc:
            return await _screen(request, api, await current(api), 1, draft, str(exc), 400)
        except ApiError as exc:
            session = await current(api)
            return await _screen(request, api, session, 3, draft, exc.message, exc.status)
    return redirect(request, LIST)

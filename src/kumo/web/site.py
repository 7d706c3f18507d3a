"""Puts the dashboard on the API application: its pages, its static files and ``/``."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import Response

from kumo.config import Config
from kumo.web.pages import (
    admin_flavors,
    admin_hosts,
    admin_identity,
    admin_quotas,
    auth,
    consoles,
    floating_ips,
    instances,
    labels,
    launch,
    networks,
    routers,
    security_groups,
    server_actions,
    server_detail,
    usage,
)
from kumo.web.pages import image_upload as storage_image_upload
from kumo.web.pages import images as storage_images
from kumo.web.pages import keypairs as storage_keypairs
from kumo.web.pages import volumes as storage_volumes
from kumo.web.routing import DashboardRoute, DashboardStatic, redirect
from kumo.web.session import COOKIE, SIGN_IN
from kumo.web.settings import WebSettings

STATIC = Path(__file__).parent / "static"
HOME = instances.LIST

# Every area's module (kumo.web.pages): a new page is one more here. launch comes before
# instances: /project/instances/launch is not a server id.
PAGES: tuple[ModuleType, ...] = (auth, launch, instances, server_actions, server_detail)
# Storage: image_upload before images (its /project/images/new is not an image id).
PAGES += (storage_image_upload, storage_images, storage_keypairs, storage_volumes)
PAGES += (networks, routers, floating_ips, security_groups)
PAGES += (consoles,)
PAGES += (labels, admin_hosts, admin_flavors, admin_identity, admin_quotas, usage)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


@router.get("/")
async def home(request: Request) -> Response:
    """The instances when signed in, sign-in otherwise (the instances page would send
    there too, but one redirect is faster than two)."""
    return redirect(request, HOME if request.cookies.get(COOKIE) else SIGN_IN)


def install(app: FastAPI, config: Config) -> None:
    """Serve the dashboard on ``app``: after the APIs, whose paths it does not share."""
    served = [router, *(module.router for module in PAGES), consoles.terminal]
    pages = frozenset(
        str(getattr(route, "path", ""))
        for r in served
        for route in r.routes
        if "GET" in (getattr(route, "methods", None) or ())
    )
    app.state.kumo_web = WebSettings.from_config(config, pages)
    for r in served:
        app.include_router(r)
    app.mount("/static", DashboardStatic(directory=STATIC), name="static")

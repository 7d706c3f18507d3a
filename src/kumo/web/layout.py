"""The frame around every page: navigation, project switcher and user menu.

The navigation lists every area the dashboard is meant to have; an area whose page is not
served yet is shown as such instead of as a dead link, so adding a page is adding its
router to kumo.web.site.
The Admin section is offered to admins only (the APIs' policies still decide what works).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from kumo.web import csrf
from kumo.web.apiclient import ApiClient
from kumo.web.session import Session, current
from kumo.web.settings import settings


@dataclass(frozen=True)
class NavItem:
    label: str
    path: str


PROJECT_NAV = (
    NavItem("Instances", "/project/instances"),
    NavItem("Images", "/project/images"),
    NavItem("Volumes", "/project/volumes"),
    NavItem("Networks", "/project/networks"),
    NavItem("Routers", "/project/routers"),
    NavItem("Floating IPs", "/project/floating-ips"),
    NavItem("Security groups", "/project/security-groups"),
    NavItem("Key pairs", "/project/key-pairs"),
    NavItem("Usage", "/project/usage"),
)
ADMIN_NAV = (
    NavItem("Hosts", "/admin/hosts"),
    NavItem("Projects", "/admin/projects"),
    NavItem("Users", "/admin/users"),
    NavItem("Flavors", "/admin/flavors"),
    NavItem("Quotas", "/admin/quotas"),
)


def _entries(items: tuple[NavItem, ...], served: frozenset[str], here: str) -> list[dict[str, Any]]:
    return [
        {
            "label": i.label,
            "path": i.path,
            "served": i.path in served,
            "current": here == i.path or here.startswith(i.path + "/"),
        }
        for i in items
    ]


async def signed_in(request: Request, api: ApiClient) -> tuple[Session, dict[str, Any]]:
    """The session of ``api``'s token and the frame for it: what every full page starts
    with (Keystone validates the token and lists the user's projects, together)."""
    session, projects = await asyncio.gather(current(api), api.my_projects())
    return session, frame(request, session, projects)


def frame(request: Request, session: Session, projects: list[dict[str, Any]]) -> dict[str, Any]:
    """What base.html needs to draw the frame for ``session``."""
    served = settings(request).pages
    here = request.url.path
    return {
        "session": session,
        "csrf_token": csrf.token_for(session.token),
        "projects": sorted(projects, key=lambda p: str(p.get("name", ""))),
        "nav": _entries(PROJECT_NAV, served, here),
        "admin_nav": _entries(ADMIN_NAV, served, here) if session.is_admin else [],
    }

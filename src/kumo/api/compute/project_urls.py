"""Compute and block storage URLs with or without the project id (Nova's 2.18 routes,
Cinder's 3.67 ones, served at any version).

``/compute/v2.1/{project_id}/servers`` and ``/compute/v2.1/servers`` are the same resource,
as are ``/volume/v3/{project_id}/volumes`` and ``/volume/v3/volumes``: old clients and
catalogs put the project id in the endpoint, newer ones do not. Like Nova's router, a first
path segment of hex digits and dashes is a project id (no resource name looks like one);
the path is served without it, and a project id that is not the token's is a 400, as Nova
and Cinder answer it.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

from kumo.api.compute.microversion import PREFIX as COMPUTE
from kumo.api.volume.microversion import PREFIX as VOLUME

# The request scope key under which the project id named by the URL travels to `caller`.
URL_PROJECT_ID = "kumo.url_project_id"
_PROJECT_PATH = re.compile(
    rf"^(?P<prefix>{re.escape(COMPUTE)}|{re.escape(VOLUME)})/(?P<project>[0-9a-f-]+)"
    r"(?P<rest>/.*)?$"
)


def split(path: str) -> tuple[str | None, str]:
    """The project id a compute or volume path names, if any, and the path without it."""
    match = _PROJECT_PATH.match(path)
    if match is None:
        return None, path
    return match.group("project"), match.group("prefix") + (match.group("rest") or "/")


class ProjectIdInURL:
    """ASGI middleware: route ``/compute/v2.1/{project_id}/...`` as ``/compute/v2.1/...``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            project, path = split(scope["path"])
            if project is not None:
                scope = {**scope, "path": path, "raw_path": path.encode(), URL_PROJECT_ID: project}
        await self.app(scope, receive, send)

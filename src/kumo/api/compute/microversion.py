"""Compute microversion negotiation: every /compute response says which version it spoke.

Requests under /compute/v2.1 carry ``OpenStack-API-Version: compute X.Y`` or the legacy
``X-OpenStack-Nova-API-Version``; the answer echoes both (tempest checks the legacy one).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.errors import error_response
from kumo.core.microversion import APIVersion, VersionError, from_headers, negotiate

MIN_VERSION = APIVersion(2, 1)
# Raised as features land; every change up to it must be implemented.
MAX_VERSION = APIVersion(2, 25)
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
PREFIX = "/compute/v2.1"


def _stamp(headers: MutableHeaders, version: APIVersion) -> None:
    headers["OpenStack-API-Version"] = f"compute {version}"
    headers[LEGACY_HEADER] = str(version)
    headers["Vary"] = f"OpenStack-API-Version, {LEGACY_HEADER}"


class MicroversionMiddleware:
    """Negotiates the version of every /compute/v2.1 request and echoes it on the answer
    (plain ASGI: see kumo.api.request_id for why)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        requested = from_headers(dict(request.headers), "compute", LEGACY_HEADER)
        try:
            version = negotiate(requested, MIN_VERSION, MAX_VERSION)
        except VersionError as exc:
            response = error_response(request, exc.status, exc.message)
            _stamp(response.headers, MIN_VERSION)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["api_version"] = version

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                _stamp(MutableHeaders(scope=message), version)
            await send(message)

        await self.app(scope, receive, send_stamped)


def install(app: FastAPI) -> None:
    app.add_middleware(MicroversionMiddleware)


def api_version(request: Request) -> APIVersion:
    """FastAPI dependency: the negotiated version of this request."""
    version: APIVersion = getattr(request.state, "api_version", MIN_VERSION)
    return version

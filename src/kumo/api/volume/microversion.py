"""Block storage microversion negotiation: every /volume/v3 answer says which version it
spoke (``OpenStack-API-Version: volume 3.x``), as Cinder's does."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.errors import error_response
from kumo.core.microversion import APIVersion, VersionError, from_headers, negotiate

MIN_VERSION = APIVersion(3, 0)
# Raised as features land; every change up to it must be implemented.
MAX_VERSION = APIVersion(3, 0)
PREFIX = "/volume/v3"


def _stamp(headers: MutableHeaders, version: APIVersion) -> None:
    headers["OpenStack-API-Version"] = f"volume {version}"
    headers["Vary"] = "OpenStack-API-Version"


class MicroversionMiddleware:
    """Negotiates the version of every /volume/v3 request (plain ASGI, like compute's)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX) or path.rstrip("/") == PREFIX:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        requested = from_headers(dict(request.headers), "volume", None)
        try:
            version = negotiate(requested, MIN_VERSION, MAX_VERSION)
        except VersionError as exc:
            response = error_response(request, exc.status, exc.message)
            _stamp(response.headers, MIN_VERSION)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["volume_api_version"] = version

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                _stamp(MutableHeaders(scope=message), version)
            await send(message)

        await self.app(scope, receive, send_stamped)


def install(app: FastAPI) -> None:
    app.add_middleware(MicroversionMiddleware)


def volume_api_version(request: Request) -> APIVersion:
    version: APIVersion = getattr(request.state, "volume_api_version", MIN_VERSION)
    return version

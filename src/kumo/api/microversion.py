"""Microversion negotiation as middleware, one instance per service that has them: every
answer under the service's prefix says which version it spoke.

A request asks with ``OpenStack-API-Version: <service> X.Y`` (or the service's legacy
header, such as Nova's ``X-OpenStack-Nova-API-Version``); no header means the minimum,
``latest`` the maximum, anything outside the range is a 406 in the service's error shape.
The answer echoes the version in the same headers (tempest checks the legacy one).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.errors import error_response
from kumo.core.microversion import APIVersion, VersionError, from_headers, negotiate


@dataclass(frozen=True)
class Service:
    """What one service negotiates: under which path, by which names, in which range."""

    name: str  # in OpenStack-API-Version: "compute", "volume"
    prefix: str  # requests under it are negotiated
    minimum: APIVersion
    maximum: APIVersion
    state_key: str  # request.state attribute the handlers read the version from
    legacy_header: str | None = None
    # The prefix's own document answers unversioned (Cinder's /v3/ version document).
    root_unversioned: bool = False

    def stamp(self, headers: MutableHeaders, version: APIVersion) -> None:
        headers["OpenStack-API-Version"] = f"{self.name} {version}"
        vary = "OpenStack-API-Version"
        if self.legacy_header:
            headers[self.legacy_header] = str(version)
            vary += f", {self.legacy_header}"
        headers["Vary"] = vary

    def version_of(self, request: Request) -> APIVersion:
        version: APIVersion = getattr(request.state, self.state_key, self.minimum)
        return version


class MicroversionMiddleware:
    """Plain ASGI (see kumo.api.request_id for why not BaseHTTPMiddleware)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        path = scope.get("path", "") if scope["type"] == "http" else ""
        at_root = path.rstrip("/") == service.prefix.rstrip("/")
        if not path.startswith(service.prefix) or (at_root and service.root_unversioned):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        requested = from_headers(dict(request.headers), service.name, service.legacy_header)
        try:
            version = negotiate(requested, service.minimum, service.maximum)
        except VersionError as exc:
            response = error_response(request, exc.status, exc.message)
            service.stamp(response.headers, service.minimum)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[service.state_key] = version

        async def send_stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                service.stamp(MutableHeaders(scope=message), version)
            await send(message)

        await self.app(scope, receive, send_stamped)

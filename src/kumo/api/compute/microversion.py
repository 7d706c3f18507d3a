"""Compute microversion negotiation: every /compute response says which version it spoke.

Requests under /compute/v2.1 carry ``OpenStack-API-Version: compute X.Y`` or the legacy
``X-OpenStack-Nova-API-Version``; the answer echoes both (tempest checks the legacy one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from kumo.api.errors import error_response
from kumo.core.microversion import APIVersion, VersionError, from_headers, negotiate

MIN_VERSION = APIVersion(2, 1)
# Raised as features land; every change up to it must be implemented.
MAX_VERSION = APIVersion(2, 21)
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
PREFIX = "/compute/v2.1"


def _stamp(response: Response, version: APIVersion) -> Response:
    response.headers["OpenStack-API-Version"] = f"compute {version}"
    response.headers[LEGACY_HEADER] = str(version)
    response.headers["Vary"] = f"OpenStack-API-Version, {LEGACY_HEADER}"
    return response


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def _negotiate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not request.url.path.startswith(PREFIX):
            return await call_next(request)
        requested = from_headers(dict(request.headers), "compute", LEGACY_HEADER)
        try:
            version = negotiate(requested, MIN_VERSION, MAX_VERSION)
        except VersionError as exc:
            return _stamp(error_response(request, exc.status, exc.message), MIN_VERSION)
        request.state.api_version = version
        return _stamp(await call_next(request), version)


def api_version(request: Request) -> APIVersion:
    """FastAPI dependency: the negotiated version of this request."""
    version: APIVersion = getattr(request.state, "api_version", MIN_VERSION)
    return version

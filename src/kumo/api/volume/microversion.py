"""Block storage microversion negotiation: every /volume/v3 answer says which version it
spoke (``OpenStack-API-Version: volume 3.x``), as Cinder's does; the /volume/v3/ version
document itself answers unversioned."""

from __future__ import annotations

from fastapi import FastAPI, Request

from kumo.api.microversion import MicroversionMiddleware, Service
from kumo.core.microversion import APIVersion

MIN_VERSION = APIVersion(3, 0)
# Raised as features land; every change up to it must be implemented.
MAX_VERSION = APIVersion(3, 0)
PREFIX = "/volume/v3"
SERVICE = Service(
    name="volume",
    prefix=PREFIX,
    minimum=MIN_VERSION,
    maximum=MAX_VERSION,
    state_key="volume_api_version",
    root_unversioned=True,
)


def install(app: FastAPI) -> None:
    app.add_middleware(MicroversionMiddleware, service=SERVICE)


def volume_api_version(request: Request) -> APIVersion:
    """FastAPI dependency: the negotiated version of this request."""
    return SERVICE.version_of(request)

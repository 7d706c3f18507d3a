"""Compute microversion negotiation: every /compute/v2.1 response says which version it spoke.

Requests carry ``OpenStack-API-Version: compute X.Y`` or the legacy
``X-OpenStack-Nova-API-Version``; the answer echoes both (tempest checks the legacy one).
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from kumo.api.microversion import MicroversionMiddleware, Service
from kumo.core.microversion import APIVersion

MIN_VERSION = APIVersion(2, 1)
# Raised as features land; every change up to it must be implemented.
MAX_VERSION = APIVersion(2, 26)
LEGACY_HEADER = "X-OpenStack-Nova-API-Version"
PREFIX = "/compute/v2.1"
SERVICE = Service(
    name="compute",
    prefix=PREFIX,
    minimum=MIN_VERSION,
    maximum=MAX_VERSION,
    state_key="api_version",
    legacy_header=LEGACY_HEADER,
)


def install(app: FastAPI) -> None:
    app.add_middleware(MicroversionMiddleware, service=SERVICE)


def api_version(request: Request) -> APIVersion:
    """FastAPI dependency: the negotiated version of this request."""
    return SERVICE.version_of(request)

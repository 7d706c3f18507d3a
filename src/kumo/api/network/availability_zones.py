"""/network/v2.0/availability_zones: kumo has one zone, ``nova``, for networks and routers
(Neutron derives zones from its agents; kumo's agents all serve the default zone)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.network.common import V2, list_response
from kumo.api.state import AppState, app_state

router = APIRouter(prefix=V2)

ZONE = "nova"


@router.get("/availability_zones")
def list_zones(
    request: Request, _who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    zones = [
        {"name": ZONE, "resource": resource, "state": "available"}
        for resource in ("network", "router")
    ]
    return list_response(
        request.query_params,
        "availability_zones",
        zones,
        state.config.public_url + V2 + "/availability_zones",
    )

"""Network API discovery: the versions document at /network and the v2.0 resource index."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.state import AppState, app_state

router = APIRouter()

V2 = "/network/v2.0"

# Neutron's v2.0 index names its core resources (name, collection).
RESOURCES = (
    ("network", "networks"),
    ("subnet", "subnets"),
    ("subnetpool", "subnetpools"),
    ("port", "ports"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
)


@router.get("/network", include_in_schema=False)
@router.get("/network/")
def network_versions(state: AppState = Depends(app_state)) -> dict[str, Any]:
    """Unauthenticated, as in Neutron: clients discover the version before logging in."""
    href = state.config.public_url + V2 + "/"
    return {
        "versions": [{"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}]
    }


@router.get(V2, include_in_schema=False)
@router.get(V2 + "/")
def network_v2_index(
    _who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    base = state.config.public_url + V2
    return {
        "resources": [
            {"name": name, "collection": coll, "links": [{"rel": "self", "href": f"{base}/{coll}"}]}
            for name, coll in RESOURCES
        ]
    }

"""Version discovery: what keystoneauth reads before it authenticates."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kumo.api.state import AppState, app_state

router = APIRouter()

VERSION_ID = "v3.14"


def _version(state: AppState) -> dict[str, Any]:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": state.identity_url + "/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


@router.get("/identity", include_in_schema=False)
@router.get("/identity/")
def identity_versions(state: AppState = Depends(app_state)) -> JSONResponse:
    return JSONResponse({"versions": {"values": [_version(state)]}}, status_code=300)


@router.get("/identity/v3", include_in_schema=False)
@router.get("/identity/v3/")
def identity_v3(state: AppState = Depends(app_state)) -> dict[str, Any]:
    return {"version": _version(state)}

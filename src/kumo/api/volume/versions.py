"""Block storage version discovery (unauthenticated, as in Cinder): v3.0 CURRENT with its
microversion range; tempest checks ``version``, ``min_version`` and the media types."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kumo.api.state import AppState, app_state
from kumo.api.volume.microversion import MAX_VERSION, MIN_VERSION

router = APIRouter()
UPDATED = "2026-11-22T00:00:00Z"


def _v3(state: AppState) -> dict[str, Any]:
    return {
        "id": "v3.0",
        "status": "CURRENT",
        "version": str(MAX_VERSION),
        "min_version": str(MIN_VERSION),
        "updated": UPDATED,
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": f"{state.config.public_url}/volume/v3/"},
        ],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}
        ],
    }


@router.get("/volume", include_in_schema=False)
@router.get("/volume/")
def volume_versions(state: AppState = Depends(app_state)) -> JSONResponse:
    # Cinder answers its root with 300 Multiple Choices and the list of versions.
    return JSONResponse({"versions": [_v3(state)]}, status_code=300)


@router.get("/volume/v3", include_in_schema=False)
@router.get("/volume/v3/")
def volume_v3(state: AppState = Depends(app_state)) -> dict[str, Any]:
    return {"versions": [_v3(state)]}

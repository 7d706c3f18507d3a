"""Compute version discovery: /compute lists v2.0 and v2.1 with their version ranges."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.compute.microversion import MAX_VERSION, MIN_VERSION
from kumo.api.state import AppState, app_state

router = APIRouter()

_MEDIA = [
    {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
]


def _versions(base: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "v2.0",
            "status": "SUPPORTED",
            "version": "",
            "min_version": "",
            "updated": "2011-01-21T11:33:21Z",
            "media-types": _MEDIA,
            "links": [{"rel": "self", "href": f"{base}/v2/"}],
        },
        {
            "id": "v2.1",
            "status": "CURRENT",
            "version": str(MAX_VERSION),
            "min_version": str(MIN_VERSION),
            "updated": "2013-07-23T11:33:21Z",
            "media-types": _MEDIA,
            "links": [{"rel": "self", "href": f"{base}/v2.1/"}],
        },
    ]


@router.get("/compute", include_in_schema=False)
@router.get("/compute/")
def compute_versions(state: AppState = Depends(app_state)) -> dict[str, Any]:
    return {"versions": _versions(state.config.public_url + "/compute")}


def _one(state: AppState, ident: str) -> dict[str, Any]:
    version = next(v for v in _versions(state.config.public_url + "/compute") if v["id"] == ident)
    version["links"].append(
        {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"}
    )
    return {"version": version}


@router.get("/compute/v2.1", include_in_schema=False)
@router.get("/compute/v2.1/")
def compute_v21(state: AppState = Depends(app_state)) -> dict[str, Any]:
    return _one(state, "v2.1")


@router.get("/compute/v2", include_in_schema=False)
@router.get("/compute/v2/")
def compute_v2(state: AppState = Depends(app_state)) -> dict[str, Any]:
    return _one(state, "v2.0")

"""Image version discovery (unauthenticated, as in Glance) and the v2 JSON schemas."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kumo.api.auth import Caller, caller
from kumo.api.state import AppState, app_state
from kumo.core.images import fields

router = APIRouter()

CURRENT = "v2.16"
SUPPORTED = ("v2.15", "v2.9", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0")


def _versions(state: AppState) -> dict[str, Any]:
    href = state.config.public_url + "/image/v2/"
    return {
        "versions": [
            {"id": vid, "status": status, "links": [{"rel": "self", "href": href}]}
            for vid, status in [(CURRENT, "CURRENT"), *((v, "SUPPORTED") for v in SUPPORTED)]
        ]
    }


@router.get("/image", include_in_schema=False)
@router.get("/image/")
@router.get("/image/v2", include_in_schema=False)
@router.get("/image/v2/")
def image_versions(state: AppState = Depends(app_state)) -> JSONResponse:
    # Glance answers its root and its version root alike: 300 Multiple Choices.
    return JSONResponse(_versions(state), status_code=300)


def _image_schema() -> dict[str, Any]:
    def nullable(kind: str, **extra: Any) -> dict[str, Any]:
        return {"type": [kind, "null"], **extra}

    return {
        "name": "image",
        "properties": {
            "id": {
                "type": "string",
                "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-"
                "([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$",
            },
            "name": nullable("string", maxLength=255),
            "status": {"type": "string", "readOnly": True, "enum": list(fields.STATUSES)},
            "visibility": {"type": "string", "enum": list(fields.VISIBILITIES)},
            "protected": {"type": "boolean"},
            "os_hidden": {"type": "boolean"},
            "checksum": nullable("string", readOnly=True, maxLength=32),
            "os_hash_algo": nullable("string", readOnly=True, maxLength=64),
            "os_hash_value": nullable("string", readOnly=True, maxLength=128),
            "owner": nullable("string", maxLength=255),
            "size": nullable("integer", readOnly=True),
            "virtual_size": nullable("integer", readOnly=True),
            "container_format": {
                "type": ["null", "string"],
                "enum": [None, *fields.CONTAINER_FORMATS],
            },
            "disk_format": {"type": ["null", "string"], "enum": [None, *fields.DISK_FORMATS]},
            "created_at": {"type": "string", "readOnly": True},
            "updated_at": {"type": "string", "readOnly": True},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
            "min_ram": {"type": "integer"},
            "min_disk": {"type": "integer"},
            "kernel_id": nullable("string", is_base=False),
            "ramdisk_id": nullable("string", is_base=False),
            "self": {"type": "string", "readOnly": True},
            "file": {"type": "string", "readOnly": True},
            "schema": {"type": "string", "readOnly": True},
            "locations": {"type": "array", "items": {"type": "object"}},
        },
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def _member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "image_id": {"type": "string"},
            "member_id": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "schema": {"type": "string", "readOnly": True},
        },
    }


def _collection(name: str, item: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "name": name,
        "properties": {
            name: {"type": "array", "items": item},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }
    if name == "images":
        schema["properties"].update({"first": {"type": "string"}, "next": {"type": "string"}})
        schema["links"] = [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ]
    return schema


@router.get("/image/v2/schemas/image")
def image_schema(who: Caller = Depends(caller)) -> dict[str, Any]:
    return _image_schema()


@router.get("/image/v2/schemas/images")
def images_schema(who: Caller = Depends(caller)) -> dict[str, Any]:
    return _collection("images", _image_schema())


@router.get("/image/v2/schemas/member")
def member_schema(who: Caller = Depends(caller)) -> dict[str, Any]:
    return _member_schema()


@router.get("/image/v2/schemas/members")
def members_schema(who: Caller = Depends(caller)) -> dict[str, Any]:
    return _collection("members", _member_schema())

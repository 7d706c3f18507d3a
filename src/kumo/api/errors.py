"""Error bodies in each OpenStack service's own shape, chosen by path prefix."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from kumo.core.errors import KumoError

log = logging.getLogger(__name__)

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
}


# Nova names each error body after the webob fault class it came from.
_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    501: "notImplemented",
}


# Neutron names an error after its exception class; these are the webob ones it falls back to.
_NEUTRON_TYPES = {
    400: "HTTPBadRequest",
    401: "HTTPUnauthorized",
    403: "HTTPForbidden",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "HTTPConflict",
    412: "HTTPPreconditionFailed",
    413: "OverQuota",
    415: "HTTPUnsupportedMediaType",
    501: "HTTPNotImplemented",
}


def error_body(path: str, status: int, message: str, kind: str | None = None) -> dict[str, Any]:
    title = _TITLES.get(status, "Error")
    if path.startswith("/network/v2.0"):
        return {
            "NeutronError": {
                "type": kind or _NEUTRON_TYPES.get(status, "NeutronException"),
                "message": message,
                "detail": "",
            }
        }
    if path.startswith("/image"):
        # Glance's errors are webob's: JSON for a JSON client, with the status line as code.
        return {"code": f"{status} {title}", "title": title, "message": message}
    if path.startswith(("/compute", "/volume")):  # Cinder's faults are Nova's shape
        return {_NOVA_KEYS.get(status, "computeFault"): {"code": status, "message": message}}
    return {"error": {"code": status, "title": title, "message": message}}


def error_response(
    request: Request, status: int, message: str, kind: str | None = None
) -> JSONResponse:
    headers = {}
    if status == 401 and request.url.path.startswith("/identity"):
        headers["WWW-Authenticate"] = f'Keystone uri="{request.base_url}identity"'
    return JSONResponse(
        error_body(request.url.path, status, message, kind), status_code=status, headers=headers
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(KumoError)
    async def _kumo_error(request: Request, exc: KumoError) -> JSONResponse:
        return error_response(request, exc.status, exc.message, exc.kind)

    @app.exception_handler(StaleDataError)
    async def _lost_update(request: Request, exc: StaleDataError) -> JSONResponse:
        # Optimistic concurrency (DESIGN.md section 3.5): another request changed the row
        # between this one's read and its write; nothing of this one was kept.
        return error_response(
            request,
            409,
            "The resource was changed by a concurrent request; nothing was changed by this "
            "one. Read it again and retry.",
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(request, 400, f"Invalid input for {where}: {first.get('msg')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = (
            exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "Error")
        )
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"The resource could not be found: {request.url.path}"
        return error_response(request, exc.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            request,
            500,
            "An unexpected error prevented the server from "
            "fulfilling your request; the kumo-api log has the details.",
        )

"""Every response carries a request id, as OpenStack services do (clients and tempest read
``X-OpenStack-Request-ID``; Nova also sends ``X-Compute-Request-ID``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def _request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = f"req-{uuid.uuid4()}"
        request.state.request_id = request_id
        response = await call_next(request)
        response.headers["X-OpenStack-Request-ID"] = request_id
        if request.url.path.startswith("/compute"):
            response.headers["X-Compute-Request-ID"] = request_id
        return response

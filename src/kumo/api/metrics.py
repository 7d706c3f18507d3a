"""Prometheus metrics for every API request, labelled by route template (not raw path, so
ids never explode the number of series)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter(
    "kumo_api_requests_total", "API requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "kumo_api_request_seconds",
    "API request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def _template(request: Request) -> str:
    """The request path with each path parameter put back as {name}."""
    if request.scope.get("route") is None:
        return "unmatched"
    parts = request.url.path.split("/")
    values = {str(v): k for k, v in request.path_params.items()}
    return "/".join("{" + values[p] + "}" if p in values else p for p in parts)


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def _measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = _template(request)
        REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        LATENCY.labels(request.method, route).observe(time.perf_counter() - start)
        return response

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

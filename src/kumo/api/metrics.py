"""/metrics: every API request, labelled by route template (not raw path, so ids never
explode the number of series), then the cloud's state read from the database
(kumo.api.cloud_metrics).

The request metrics are this process's own, as is anything else in the default registry:
in ``kumo up``, where the controller runs in the same process, that includes the
scheduler's (kumo.controller.metrics), so one endpoint has everything. It answers without
a token, as it always has (Prometheus scrapes with none): it names hosts and project ids,
so keep it off public networks (docs/metrics.md says how)."""

from __future__ import annotations

import time

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kumo.api.cloud_metrics import CloudCollector
from kumo.api.state import AppState

REQUESTS = Counter(
    "kumo_api_requests_total", "API requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "kumo_api_request_seconds",
    "API request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)


def _template(scope: Scope) -> str:
    """The request path with each path parameter put back as {name}."""
    if scope.get("route") is None:
        return "unmatched"
    parts = scope["path"].split("/")
    values = {str(v): k for k, v in scope.get("path_params", {}).items()}
    return "/".join("{" + values[p] + "}" if p in values else p for p in parts)


class MetricsMiddleware:
    """Counts and times every request (plain ASGI: see kumo.api.request_id for why)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _template(scope)
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - start)


def install(app: FastAPI, state: AppState) -> None:
    app.add_middleware(MetricsMiddleware)
    # The cloud's collector is this app's (its database), not the process-wide registry's:
    # a process may hold several apps (tests do), each answering for its own cloud.
    cloud = CollectorRegistry(auto_describe=False)
    cloud.register(CloudCollector(state))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(cloud)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

"""The controller's own metrics, and the endpoint that serves them.

What only the controller process can measure lives here: how long the scheduler takes to
place servers, whether this controller holds the lease, and how fast the outbox publisher
gets notifications confirmed by the broker (the backlog itself is cloud state, read from
the database by any API copy: kumo.api.cloud_metrics). A process that runs a
controller shows them in its process-wide registry.
``kumo serve controller`` serves them at ``[controller] metrics_listen`` (empty: not
served); ``kumo up`` runs the controller inside the API's process, whose /metrics shows
this registry too, so there one endpoint has everything. The cloud's state is not here:
any API copy's /metrics reads it from the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

# Made outside the process-wide registry: a process joins them to it by running a
# controller (register), so an API copy (`kumo serve api` imports this module too) does not
# show a scheduler it does not run.
PLACEMENT_SECONDS = Histogram(
    "kumo_scheduler_placement_seconds",
    "Seconds one scheduler transaction takes to place a batch of waiting servers (up to 50): "
    "claims lock, host capacity read, filters and weighers, claims, commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
SERVERS_PLACED = Counter(
    "kumo_scheduler_servers_placed_total", "Servers the scheduler gave a host", registry=None
)
ACTIVE = Gauge(
    "kumo_controller_active",
    "1 while this controller holds the lease (the active one)",
    registry=None,
)
OUTBOX_PUBLISH_SECONDS = Histogram(
    "kumo_outbox_publish_seconds",
    "Seconds from a notification's commit to the outbox until the broker confirmed it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    registry=None,
)
OUTBOX_PUBLISHED = Counter(
    "kumo_outbox_published_total",
    "Notifications the broker confirmed (and the outbox forgot)",
    registry=None,
)
OUTBOX_FAILURES = Counter(
    "kumo_outbox_publish_failures_total",
    "Times the publisher lost the broker (or the database) and backed off before retrying",
    registry=None,
)
_registered = False
_lock = threading.Lock()


def register() -> None:
    """Show the controller's metrics in this process's registry (once per process)."""
    global _registered
    with _lock:
        if not _registered:
            for metric in (
                PLACEMENT_SECONDS,
                SERVERS_PLACED,
                ACTIVE,
                OUTBOX_PUBLISH_SECONDS,
                OUTBOX_PUBLISHED,
                OUTBOX_FAILURES,
            ):
                REGISTRY.register(metric)
            _registered = True


def serve(listen: str) -> Callable[[], None]:
    """Serve the process's registry over HTTP at HOST:PORT (validated by the config);
    returns what stops it."""
    host, _, port = listen.rpartition(":")
    server, thread = start_http_server(int(port), host.strip("[]"))
    log.info("controller metrics at http://%s/metrics", listen)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop

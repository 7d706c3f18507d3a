"""The controller's own metrics, and the endpoint that serves them.

What only the controller process can measure lives here, in the process-wide registry:
how long the scheduler takes to place servers, and whether this controller holds the lease.
``kumo serve controller`` serves them at ``[controller] metrics_listen`` (empty: not
served); ``kumo up`` runs the controller inside the API's process, whose /metrics shows
this registry too, so there one endpoint has everything. The cloud's state is not here:
any API copy's /metrics reads it from the database.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

PLACEMENT_SECONDS = Histogram(
    "kumo_scheduler_placement_seconds",
    "Seconds one scheduler transaction takes to place a batch of waiting servers (up to 50): "
    "claims lock, host capacity read, filters and weighers, claims, commit",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SERVERS_PLACED = Counter("kumo_scheduler_servers_placed_total", "Servers the scheduler gave a host")
ACTIVE = Gauge("kumo_controller_active", "1 while this controller holds the lease (the active one)")


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

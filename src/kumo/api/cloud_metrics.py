"""The cloud's state in /metrics: a Prometheus collector that reads the database at each
scrape (kumo.core.monitoring), so any API copy answers with the same cloud-wide numbers.

Labels stay bounded: host names, project ids, server statuses and action names; never a
server id. The notification outbox's backlog is here (rows and the oldest one's age, read
from the database); its publish latency is a histogram in the publisher's process
(kumo.controller.metrics: kumo_outbox_publish_seconds), as the scheduler's is.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from kumo.api.state import AppState
from kumo.core import monitoring

# Server actions last from a second (a stop) to many minutes (a snapshot upload, a move).
ACTION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

# (metric name, help, the HostFigures attribute it shows)
HOST_GAUGES = (
    ("kumo_host_up", "1 when the host's agent heartbeats in time and it is not forced down", "up"),
    ("kumo_host_enabled", "1 when the host takes new servers (not disabled)", "enabled"),
    (
        "kumo_host_heartbeat_age_seconds",
        "Seconds since the host's agent last heartbeated",
        "heartbeat_age_seconds",
    ),
    (
        "kumo_host_capacity_vcpus",
        "vCPUs the scheduler may allocate on the host (inventory x cpu_allocation_ratio)",
        "capacity_vcpus",
    ),
    ("kumo_host_used_vcpus", "vCPUs allocated to servers on the host", "used_vcpus"),
    ("kumo_host_free_vcpus", "vCPUs the scheduler can still allocate on the host", "free_vcpus"),
    (
        "kumo_host_capacity_memory_bytes",
        "RAM the scheduler may allocate on the host ((inventory - reserved) x "
        "ram_allocation_ratio)",
        "capacity_memory_bytes",
    ),
    ("kumo_host_used_memory_bytes", "RAM allocated to servers on the host", "used_memory_bytes"),
    (
        "kumo_host_free_memory_bytes",
        "RAM the scheduler can still allocate on the host",
        "free_memory_bytes",
    ),
    (
        "kumo_host_capacity_disk_bytes",
        "Local disk the scheduler may allocate on the host ((inventory - reserved) x "
        "disk_allocation_ratio)",
        "capacity_disk_bytes",
    ),
    ("kumo_host_used_disk_bytes", "Local disk allocated to servers on the host", "used_disk_bytes"),
    (
        "kumo_host_free_disk_bytes",
        "Local disk the scheduler can still allocate on the host",
        "free_disk_bytes",
    ),
    ("kumo_host_servers", "Servers placed on the host", "servers"),
    (
        "kumo_host_dhcp_servers",
        "DHCP servers (one dnsmasq per network with guests there) the host runs",
        "dhcp_servers",
    ),
    ("kumo_host_routers", "Routers the host carries", "routers"),
)


class CloudCollector(Collector):
    """Reads the cloud's state from the database each time it is collected."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not query the database

    def collect(self) -> Iterator[Metric]:
        config = self.state.config
        start = time.perf_counter()
        with self.state.db.session() as session:
            servers = monitoring.servers_by_status(session)
            hosts = monitoring.host_figures(
                session, config.scheduler, config.hosts.heartbeat_timeout
            )
            unplaced = monitoring.unplaced_routers(session)
            actions = monitoring.action_figures(session, ACTION_BUCKETS)
            outbox = monitoring.outbox_figures(session)
        elapsed = time.perf_counter() - start

        family = GaugeMetricFamily(
            "kumo_servers", "Servers by project and status", labels=["project_id", "status"]
        )
        for (project_id, status), count in sorted(servers.items()):
            family.add_metric([project_id, status], count)
        yield family

        for name, documentation, attribute in HOST_GAUGES:
            family = GaugeMetricFamily(name, documentation, labels=["host"])
            for host in hosts:
                value = getattr(host, attribute)
                if value is not None:
                    family.add_metric([host.name], float(value))
            yield family
        yield GaugeMetricFamily(
            "kumo_routers_unplaced", "Routers no host carries yet", value=unplaced
        )
        yield from _action_families(actions)
        yield GaugeMetricFamily(
            "kumo_outbox_backlog",
            "Notifications committed to the outbox and not yet confirmed by the broker",
            value=outbox.rows,
        )
        yield GaugeMetricFamily(
            "kumo_outbox_oldest_age_seconds",
            "Age of the oldest notification waiting in the outbox (0 when it is empty)",
            value=outbox.oldest_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "kumo_cloud_metrics_query_seconds",
            "Seconds this scrape spent reading the cloud's state from the database",
            value=elapsed,
        )


def _action_families(actions: list[monitoring.ActionFigures]) -> Iterator[Metric]:
    started = CounterMetricFamily(
        "kumo_server_actions", "Server actions asked for, by action", labels=["action"]
    )
    failed = CounterMetricFamily(
        "kumo_server_action_failures",
        "Server actions that ended in error, by action",
        labels=["action"],
    )
    durations = HistogramMetricFamily(
        "kumo_server_action_duration_seconds",
        "Seconds from a server action's request to its recorded end (actions whose end is "
        "recorded: moves, shelve, snapshots, volume attachments, crash dumps)",
        labels=["action"],
    )
    for figures in actions:
        started.add_metric([figures.action], figures.started)
        failed.add_metric([figures.action], figures.failed)
        if figures.finished:
            buckets = [
                (str(bound), count)
                for bound, count in zip(ACTION_BUCKETS, figures.buckets, strict=True)
            ]
            buckets.append(("+Inf", figures.finished))
            durations.add_metric([figures.action], buckets, figures.seconds_sum)
    yield started
    yield failed
    yield durations

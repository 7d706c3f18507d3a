"""/metrics: the cloud's state read from the database at scrape time (servers by project and
status, host capacity as the scheduler counts it, heartbeat age, DHCP servers and routers
per host, server actions), the scheduler's latency, and the controller's own endpoint; on
every database backend. Scraped without a token and parsed with prometheus_client's own
text parser, as Prometheus reads it."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_server_networks import _server
from test_servers import Compute

from kumo.config import SchedulerConfig
from kumo.controller import metrics as controller_metrics
from kumo.controller.service import Controller
from kumo.db import models as m
from kumo.db.types import utcnow

from kumoproc import free_port, wait_for
from netapi import V2, create, network, subnet, tenant

MIB, GIB = 1024**2, 1024**3
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def scrape(client: Any) -> Samples:
    resp = client.get("/metrics")  # no token: Prometheus scrapes with none
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=")
    return parse(resp.text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def test_metrics_follow_the_cloud(compute: Compute) -> None:
    cloud, admin = compute.cloud, compute.cloud.admin
    controller_metrics.register()  # this process plays kumo up's controller (converge)
    samples = scrape(compute.client)
    # One host registered (fake-1: 8 vCPUs, 8704 MiB, 100 GiB), nothing on it yet.
    cfg = SchedulerConfig()
    capacity_memory = (8704 - cfg.reserved_host_memory_mb) * cfg.ram_allocation_ratio * MIB
    assert value(samples, "kumo_host_up", host="fake-1") == 1
    assert value(samples, "kumo_host_capacity_vcpus", host="fake-1") == 8 * cfg.cpu_allocation_ratio
    assert value(samples, "kumo_host_capacity_memory_bytes", host="fake-1") == capacity_memory
    assert value(samples, "kumo_host_capacity_disk_bytes", host="fake-1") == 100 * GIB
    assert value(samples, "kumo_host_used_vcpus", host="fake-1") == 0
    assert value(samples, "kumo_host_free_memory_bytes", host="fake-1") == capacity_memory
    assert value(samples, "kumo_host_routers", host="fake-1") == 0
    assert not [k for k in samples if k[0] == "kumo_servers"]

    # A second host whose agent went quiet an hour ago.
    old = "0b7e6c52-0000-4000-8000-00000000000b"
    compute.register(old, "old-1", 4, 4096)
    with cloud.db.session() as session:
        session.get(m.Host, old).last_heartbeat_at = utcnow() - dt.timedelta(hours=1)

    # Project A: a network with DHCP, a router on it, two servers on it; project B: two
    # servers without a network, one of them stopped.
    project_a, member_a = tenant(cloud, "metrics-a")
    project_b, member_b = tenant(cloud, "metrics-b")
    net = network(cloud, member_a)
    sub = subnet(cloud, member_a, net["id"], "10.30.0.0/24")
    router = create(cloud, member_a, "router", name="r")
    resp = cloud.client.put(
        f"{V2}/routers/{router['id']}/add_router_interface",
        json={"subnet_id": sub["id"]},
        headers=member_a,
    )
    assert resp.status_code == 200, resp.text
    a1 = _server(compute, member_a, networks=[{"uuid": net["id"]}])
    a2 = _server(compute, member_a, networks=[{"uuid": net["id"]}])
    b1 = _server(compute, member_b)
    b2 = _server(compute, member_b)
    samples = scrape(compute.client)
    assert value(samples, "kumo_servers", project_id=project_a, status="BUILD") == 2
    assert value(samples, "kumo_servers", project_id=project_b, status="BUILD") == 2
    placed = value(samples, "kumo_scheduler_placement_seconds_count") or 0.0

    compute.converge()
    assert compute.action(b2, member_b, {"os-stop": None}).status_code == 202
    compute.converge()
    assert compute.show(b2, member_b)["status"] == "SHUTOFF"
    samples = scrape(compute.client)
    assert value(samples, "kumo_servers", project_id=project_a, status="ACTIVE") == 2
    assert value(samples, "kumo_servers", project_id=project_b, status="ACTIVE") == 1
    assert value(samples, "kumo_servers", project_id=project_b, status="SHUTOFF") == 1
    assert value(samples, "kumo_servers", project_id=project_a, status="BUILD") is None
    # Every server is on fake-1 (old-1 is down): four m1.tiny (1 vCPU, 128 MiB, 1 GiB).
    assert value(samples, "kumo_host_servers", host="fake-1") == 4
    assert value(samples, "kumo_host_used_vcpus", host="fake-1") == 4
    assert value(samples, "kumo_host_free_vcpus", host="fake-1") == 8 * 16 - 4
    assert value(samples, "kumo_host_used_memory_bytes", host="fake-1") == 4 * 128 * MIB
    assert value(samples, "kumo_host_free_memory_bytes", host="fake-1") == (
        capacity_memory - 4 * 128 * MIB
    )
    assert value(samples, "kumo_host_used_disk_bytes", host="fake-1") == 4 * GIB
    assert value(samples, "kumo_host_free_disk_bytes", host="fake-1") == 96 * GIB
    assert value(samples, "kumo_host_servers", host="old-1") == 0
    assert value(samples, "kumo_host_capacity_vcpus", host="old-1") == 4 * 16
    # Liveness and heartbeat age.
    assert value(samples, "kumo_host_up", host="old-1") == 0
    assert value(samples, "kumo_host_enabled", host="old-1") == 1
    old_age = value(samples, "kumo_host_heartbeat_age_seconds", host="old-1")
    assert old_age is not None and 3600 <= old_age < 3700
    age = value(samples, "kumo_host_heartbeat_age_seconds", host="fake-1")
    assert age is not None and 0 <= age < 60
    # The router and the network's DHCP server are on fake-1, the only host up.
    assert value(samples, "kumo_host_routers", host="fake-1") == 1
    assert value(samples, "kumo_host_dhcp_servers", host="fake-1") == 1
    assert value(samples, "kumo_host_routers", host="old-1") == 0
    assert value(samples, "kumo_host_dhcp_servers", host="old-1") == 0
    assert value(samples, "kumo_routers_unplaced") == 0
    # The scheduler placed them (its histogram is this process's, as in kumo up).
    assert (value(samples, "kumo_scheduler_placement_seconds_count") or 0) > placed
    # Actions: four creates and a stop asked for, each ended with its task.
    assert value(samples, "kumo_server_actions_total", action="create") == 4
    assert value(samples, "kumo_server_actions_total", action="stop") == 1
    assert value(samples, "kumo_server_action_failures_total", action="stop") == 0
    # The stop ended with its task (the agent powered the guest off): it has a duration.
    assert value(samples, "kumo_server_action_duration_seconds_count", action="stop") == 1
    query = value(samples, "kumo_cloud_metrics_query_seconds")
    assert query is not None and query > 0

    # Crash dumps end when the agent reports: one that works, one whose guest is gone.
    crash = {"trigger_crash_dump": None}
    at_217 = {**admin, "X-OpenStack-Nova-API-Version": "2.17"}
    assert compute.action(a1, at_217, crash).status_code == 202
    compute.loop.driver.destroy(a2)
    with cloud.db.session() as session:
        session.get(m.Instance, a2).vm_state = "error"
    assert compute.action(a2, at_217, crash).status_code == 202
    compute.converge()
    samples = scrape(compute.client)
    assert value(samples, "kumo_servers", project_id=project_a, status="ERROR") == 1
    assert value(samples, "kumo_server_actions_total", action="trigger_crash_dump") == 2
    assert value(samples, "kumo_server_action_failures_total", action="trigger_crash_dump") == 1
    count = "kumo_server_action_duration_seconds_count"
    bucket = "kumo_server_action_duration_seconds_bucket"
    assert value(samples, count, action="trigger_crash_dump") == 2
    assert value(samples, bucket, action="trigger_crash_dump", le="+Inf") == 2
    # Within the minute this test has run, and not below zero.
    assert value(samples, bucket, action="trigger_crash_dump", le="60.0") == 2
    total = value(samples, "kumo_server_action_duration_seconds_sum", action="trigger_crash_dump")
    assert total is not None and 0 <= total < 120

    # Deleting gives the capacity back and drops the DHCP server with the last guest.
    for server_id, headers in ((a1, member_a), (a2, member_a), (b1, member_b)):
        resp = compute.client.delete(f"/compute/v2.1/servers/{server_id}", headers=headers)
        assert resp.status_code == 204, resp.text
    compute.converge()
    samples = scrape(compute.client)
    assert value(samples, "kumo_host_servers", host="fake-1") == 1
    assert value(samples, "kumo_host_used_vcpus", host="fake-1") == 1
    assert value(samples, "kumo_host_dhcp_servers", host="fake-1") == 0
    assert value(samples, "kumo_servers", project_id=project_a, status="ACTIVE") is None
    assert value(samples, "kumo_servers", project_id=project_b, status="SHUTOFF") == 1


def test_action_durations_are_summed_in_the_database(cloud: Any) -> None:
    """The duration histogram is worked out in SQL on each backend (seconds_between):
    recorded actions with known start and finish times land in the right buckets, to the
    sub-second, and only a message starting with "Error" counts as a failure."""
    start = utcnow() - dt.timedelta(days=1)
    rows = [  # (action, seconds to finish or None, message)
        ("migrate", 0.25, None),
        ("migrate", 0.75, None),
        ("migrate", 3.0, "Error: the destination did not report in time"),
        ("migrate", 45.0, None),
        ("migrate", 7200.0, None),
        ("migrate", None, None),
        ("live-migration", 2.0, "Cancelled: by the admin"),
        ("stop", None, None),
    ]
    with cloud.db.session() as session:
        for index, (action, seconds, message) in enumerate(rows):
            session.add(
                m.InstanceAction(
                    instance_id=f"00000000-0000-4000-8000-{index:012d}",
                    action=action,
                    request_id=f"req-{index}",
                    user_id="u",
                    project_id="p",
                    start_time=start,
                    finish_time=None if seconds is None else start + dt.timedelta(seconds=seconds),
                    message=message,
                )
            )
    samples = scrape(cloud.client)
    bucket = "kumo_server_action_duration_seconds_bucket"
    expected = {"0.5": 1, "1.0": 2, "2.5": 2, "5.0": 3, "30.0": 3, "60.0": 4, "3600.0": 4}
    expected["+Inf"] = 5
    assert {le: value(samples, bucket, action="migrate", le=le) for le in expected} == expected
    total = value(samples, "kumo_server_action_duration_seconds_sum", action="migrate")
    assert total == pytest.approx(0.25 + 0.75 + 3 + 45 + 7200, abs=0.01)
    assert value(samples, "kumo_server_action_duration_seconds_count", action="migrate") == 5
    assert value(samples, "kumo_server_actions_total", action="migrate") == 6
    assert value(samples, "kumo_server_action_failures_total", action="migrate") == 1
    assert value(samples, "kumo_server_action_failures_total", action="live-migration") == 0
    assert value(samples, bucket, action="live-migration", le="2.5") == 1
    assert value(samples, "kumo_server_actions_total", action="stop") == 1
    assert value(samples, bucket, action="stop", le="+Inf") is None  # nothing finished


@contextlib.contextmanager
def _controller(config: Any, database: Any, metrics_listen: str) -> Iterator[Controller]:
    """A controller with [controller] metrics_listen, running in a thread for the block's
    duration, then stopped (and gone: its thread ended)."""
    config = config.model_copy(
        update={
            "controller": config.controller.model_copy(update={"metrics_listen": metrics_listen})
        }
    )
    controller = Controller(database, config, poll=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=controller.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield controller
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()


def test_the_controller_serves_its_own_metrics(config: Any, database: Any) -> None:
    """`kumo serve controller` with [controller] metrics_listen: its scheduler histogram and
    whether it holds the lease, at its own port, for as long as it runs."""
    listen = f"127.0.0.1:{free_port()}"
    url = f"http://{listen}/metrics"

    def active() -> bool:
        try:
            samples = parse(httpx.get(url, timeout=5).text)
        except httpx.TransportError:
            return False
        return value(samples, "kumo_controller_active") == 1

    with _controller(config, database, listen):
        wait_for(active, 20, "the controller's metrics to say it is active")
        samples = parse(httpx.get(url, timeout=5).text)
        assert value(samples, "kumo_scheduler_placement_seconds_count") is not None
        assert value(samples, "kumo_scheduler_servers_placed_total") is not None
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=5)


def test_a_taken_metrics_port_does_not_stop_the_controller(
    config: Any, database: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The control loops matter more than their metrics: a controller whose metrics port is
    taken says so in its log and takes the lease all the same."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        with _controller(config, database, listen) as controller:
            wait_for(lambda: controller.active, 20, "the controller to take the lease")
    assert f"cannot serve the controller's metrics at {listen}" in caplog.text

"""The outbox publisher (kumo.controller.outbox) against the machine's real RabbitMQ, on
every database backend: it publishes what the outbox holds in order, with the row's
message id, deletes rows only once confirmed, keeps them while the broker cannot be
reached, and /metrics shows the backlog and the publish latency.

Each test routes on topics of its own ("kumotest-<uuid>....") so parallel runs never share
a queue, and deletes the queues the publisher declared for them.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kombu
import pytest
from sqlalchemy import func, select
from test_metrics import scrape, value
from test_servers import SERVERS, Compute

from kumo.config import NotificationsConfig
from kumo.controller import metrics as controller_metrics
from kumo.controller.outbox import Publisher
from kumo.core import notifications
from kumo.db.engine import Database
from kumo.db.outbox_tables import OutboxMessage

from apihelpers import make_client
from kumoproc import free_port, wait_for

URL = "amqp://guest:guest@127.0.0.1:5672/"
PRIORITIES = ("info", "error")


@dataclasses.dataclass
class Bus:
    compute: Compute
    topics: tuple[str, str]  # versioned, legacy

    @property
    def queues(self) -> list[str]:
        return [f"{topic}.{priority}" for topic in self.topics for priority in PRIORITIES]

    def backlog(self) -> int:
        with self.compute.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(OutboxMessage)) or 0)

    def received(self, queue: str) -> list[dict[str, Any]]:
        """Everything waiting in ``queue`` (taken off it), decoded as oslo.messaging does."""
        bodies = []
        with kombu.Connection(URL) as connection:
            channel = connection.channel()
            while (message := channel.basic_get(queue, no_ack=True)) is not None:
                assert message.properties["content_type"] == "application/json"
                envelope = json.loads(message.body)
                assert envelope["oslo.version"] == "2.0"
                bodies.append(json.loads(envelope["oslo.message"]))
        return bodies


@pytest.fixture
def bus(cloud: Any, tmp_path: Path) -> Iterator[Bus]:
    tag = f"kumotest-{uuid.uuid4().hex[:12]}"
    settings = NotificationsConfig(
        url=URL,
        versioned_topic=f"{tag}.versioned",
        topic=f"{tag}.legacy",
        publisher_host="localhost",
    )
    db = Database(cloud.db.url, session_info=notifications.session_info(settings))
    config = cloud.config.model_copy(update={"notifications": settings})
    with make_client(config, db) as client:
        yield Bus(
            Compute(dataclasses.replace(cloud, client=client, db=db), tmp_path),
            (settings.versioned_topic, settings.topic),
        )
    db.dispose()
    queues = [f"{t}.{p}" for t in (settings.versioned_topic, settings.topic) for p in PRIORITIES]
    with kombu.Connection(URL) as connection:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)


def _lifecycle(bus: Bus) -> str:
    admin = bus.compute.cloud.admin
    server_id: str = bus.compute.create(admin).json()["server"]["id"]
    bus.compute.converge()
    assert bus.compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    bus.compute.converge()
    return server_id


def test_publishes_in_order_once_and_empties_the_outbox(bus: Bus) -> None:
    controller_metrics.register()
    server_id = _lifecycle(bus)
    with bus.compute.db.session() as session:
        written = [
            (row.message_id, row.routing_key)
            for row in session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        ]
    # create and delete, start and end, versioned and legacy; and the test image's (Glance)
    assert len(written) == 9
    samples = scrape(bus.compute.client)
    assert value(samples, "kumo_outbox_backlog") == 9
    assert (value(samples, "kumo_outbox_oldest_age_seconds") or 0) > 0
    before = value(scrape(bus.compute.client), "kumo_outbox_publish_seconds_count") or 0

    publisher = Publisher(bus.compute.db, URL)
    assert publisher.drain() == 9
    assert bus.backlog() == 0
    assert publisher.drain() == 0  # nothing twice

    versioned_topic, legacy_topic = bus.topics
    versioned = bus.received(f"{versioned_topic}.info")
    legacy = bus.received(f"{legacy_topic}.info")
    assert [m["event_type"] for m in versioned] == [
        "instance.create.start",
        "instance.create.end",
        "instance.delete.start",
        "instance.delete.end",
    ]
    assert [m["event_type"] for m in legacy] == [
        "image.create",  # the test's image, on exchange glance, same routing key
        "compute.instance.create.start",
        "compute.instance.create.end",
        "compute.instance.delete.start",
        "compute.instance.delete.end",
    ]
    assert {m["payload"]["nova_object.data"]["uuid"] for m in versioned} == {server_id}
    # create.start has no host yet: the configured publisher_host stands in
    assert [m["publisher_id"] for m in legacy] == [
        "image.localhost",
        "nova-compute:localhost",
        "nova-compute:fake-1",
        "nova-compute:fake-1",
        "nova-compute:fake-1",
    ]
    sent = {(m["message_id"], f"{versioned_topic}.info") for m in versioned} | {
        (m["message_id"], f"{legacy_topic}.info") for m in legacy
    }
    assert sent == set(written)
    samples = scrape(bus.compute.client)
    assert value(samples, "kumo_outbox_backlog") == 0
    assert value(samples, "kumo_outbox_publish_seconds_count") == before + 9


def test_rows_wait_while_the_broker_is_unreachable(bus: Bus) -> None:
    _lifecycle(bus)
    down = Publisher(bus.compute.db, f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    with pytest.raises(OSError):
        down.drain()
    assert bus.backlog() == 9  # nothing lost, nothing forgotten

    # The running loop backs off, then delivers once it can reach a broker.
    stop = threading.Event()
    up = Publisher(bus.compute.db, URL, poll=0.1)
    thread = threading.Thread(target=up.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: bus.backlog() == 0 or None, timeout=30, what="the outbox to drain")
    finally:
        stop.set()
        thread.join(10)
    events = [m["event_type"] for m in bus.received(f"{bus.topics[0]}.info")]
    assert events == [
        "instance.create.start",
        "instance.create.end",
        "instance.delete.start",
        "instance.delete.end",
    ]

"""Notifications written to the outbox in the transaction of the change (kumo.core.
notifications), on every database backend: the envelope as oslo.messaging writes it, the
versioned payloads with the fields of Nova's samples, start/end/error as the instance
action starts and ends, in order per server; and nothing at all when notifications are off.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from test_servers import SERVERS, Compute

from kumo.config import NotificationsConfig
from kumo.core import notifications, wakeup
from kumo.core.notifications import envelope, recorder
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.outbox_tables import OutboxMessage

from apihelpers import ACTION_FIELDS, CREATE_FIELDS, make_client
from netapi import V2

URL = "amqp://guest:guest@127.0.0.1:5672/"

FLAVOR_FIELDS = {
    "flavorid", "name", "root_gb", "vcpus", "ephemeral_gb", "memory_mb", "disabled",
    "rxtx_factor", "extra_specs", "projects", "swap", "is_public", "vcpu_weight", "description",
}  # fmt: skip
NOTIFIER_KEYS = {"message_id", "publisher_id", "event_type", "priority", "payload", "timestamp"}


@dataclasses.dataclass
class Message:
    row: OutboxMessage
    body: dict[str, Any]  # the decoded "oslo.message"


def _outbox(db: Database, exchange: str | None = "nova") -> list[Message]:
    """The outbox's messages in order (those on ``exchange``; None: all)."""
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if exchange is not None:
        query = query.where(OutboxMessage.exchange == exchange)
    with db.session() as session:
        rows = list(session.scalars(query))
    found = []
    for row in rows:
        envelope = json.loads(row.envelope)
        assert envelope["oslo.version"] == "2.0"
        assert isinstance(envelope["oslo.message"], str)  # JSON text inside JSON, as oslo
        found.append(Message(row, json.loads(envelope["oslo.message"])))
    return found


@pytest.fixture
def notifying(cloud: Any, tmp_path: Path) -> Iterator[Compute]:
    """The cloud's API over a Database whose sessions carry notification settings, as
    kumo.runtime builds it when [notifications] url is set."""
    settings = NotificationsConfig(url=URL, publisher_host="kumo-test")
    db = Database(cloud.db.url, session_info=notifications.session_info(settings))
    config = cloud.config.model_copy(update={"notifications": settings})
    with make_client(config, db) as client:
        yield Compute(dataclasses.replace(cloud, client=client, db=db), tmp_path)
    db.dispose()


def test_without_a_url_nothing_is_written(cloud: Any, tmp_path: Path) -> None:
    compute = Compute(cloud, tmp_path)
    assert notifications.session_info(NotificationsConfig()) == {}
    resp = compute.create(cloud.admin)
    assert resp.status_code == 202, resp.text
    compute.converge()
    assert compute.client.delete(f"{SERVERS}/{resp.json()['server']['id']}", headers=cloud.admin)
    compute.converge()
    assert _outbox(compute.db, exchange=None) == []


def test_create_and_delete_write_nova_notifications_in_order(notifying: Compute) -> None:
    admin = notifying.cloud.admin
    mark = wakeup.mark(wakeup.OUTBOX)
    resp = notifying.create(admin, metadata={"k": "v"})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    request_id = resp.headers["x-openstack-request-id"]
    assert wakeup.mark(wakeup.OUTBOX) > mark  # the publisher is woken after the commit
    started = _outbox(notifying.db)
    assert [(m.row.routing_key, m.body["event_type"]) for m in started] == [
        ("versioned_notifications.info", "instance.create.start"),
        ("notifications.info", "compute.instance.create.start"),
    ]
    notifying.converge()
    assert notifying.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    notifying.converge()
    messages = _outbox(notifying.db)
    versioned = [m for m in messages if m.row.routing_key == "versioned_notifications.info"]
    assert [m.body["event_type"] for m in versioned] == [
        "instance.create.start",
        "instance.create.end",
        "instance.delete.start",
        "instance.delete.end",
    ]
    legacy = [m.body["event_type"] for m in messages if m.row.routing_key == "notifications.info"]
    assert legacy == [
        "compute.instance.create.start",
        "compute.instance.create.end",
        "compute.instance.delete.start",
        "compute.instance.delete.end",
    ]
    for message in messages:
        assert message.row.exchange == "nova" and message.row.resource_id == server_id
        assert set(message.body) >= NOTIFIER_KEYS
        assert message.body["message_id"] == message.row.message_id
        assert message.body["priority"] == "INFO"
        assert message.body["publisher_id"] in ("nova-compute:fake-1", "nova-compute:kumo-test")
    assert len({m.row.message_id for m in messages}) == len(messages)

    create_end, delete_end = versioned[1].body["payload"], versioned[3].body["payload"]
    assert create_end["nova_object.name"] == "InstanceCreatePayload"
    assert create_end["nova_object.namespace"] == "nova"
    assert create_end["nova_object.version"] == "1.13"
    data = create_end["nova_object.data"]
    assert set(data) == CREATE_FIELDS
    assert (data["uuid"], data["state"], data["power_state"]) == (server_id, "active", "running")
    assert data["host"] == "fake-1" and data["launched_at"] and data["metadata"] == {"k": "v"}
    assert data["request_id"] == versioned[0].body["payload"]["nova_object.data"]["request_id"]
    assert data["request_id"] == request_id
    assert data["flavor"]["nova_object.name"] == "FlavorPayload"
    assert set(data["flavor"]["nova_object.data"]) == FLAVOR_FIELDS
    assert data["fault"] is None
    assert delete_end["nova_object.name"] == "InstanceActionPayload"
    deleted = delete_end["nova_object.data"]
    assert set(deleted) == ACTION_FIELDS
    assert (deleted["state"], deleted["ip_addresses"]) == ("deleted", [])
    assert deleted["deleted_at"] and deleted["terminated_at"]
    legacy_end = messages[-1].body["payload"]
    assert (legacy_end["instance_id"], legacy_end["state"]) == (server_id, "deleted")
    assert legacy_end["memory_mb"] > 0 and legacy_end["instance_type"]


def test_create_start_tells_no_addresses_and_create_end_tells_them(notifying: Compute) -> None:
    """As Nova's create.start (its network comes later), though kumo has the port and its
    address from the request's transaction on: the start does not look them up."""
    admin, client = notifying.cloud.admin, notifying.client
    resp = client.post(f"{V2}/networks", json={"network": {"name": "n1"}}, headers=admin)
    assert resp.status_code == 201, resp.text
    network_id = resp.json()["network"]["id"]
    body = {"subnet": {"network_id": network_id, "cidr": "10.9.0.0/24", "ip_version": 4}}
    assert client.post(f"{V2}/subnets", json=body, headers=admin).status_code == 201
    resp = notifying.create(admin, networks=[{"uuid": network_id}])
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    notifying.converge()
    ports = client.get(f"{V2}/ports", params={"device_id": server_id}, headers=admin).json()
    address = ports["ports"][0]["fixed_ips"][0]["ip_address"]
    messages = {m.body["event_type"]: m.body["payload"] for m in _outbox(notifying.db)}
    start = messages["instance.create.start"]["nova_object.data"]
    assert (start["ip_addresses"], start["block_devices"]) == ([], [])
    assert messages["compute.instance.create.start"]["fixed_ips"] == []
    end = messages["instance.create.end"]["nova_object.data"]
    assert [ip["nova_object.data"]["address"] for ip in end["ip_addresses"]] == [address]
    assert [ip["address"] for ip in messages["compute.instance.create.end"]["fixed_ips"]] == [
        address
    ]


def test_a_transactions_outbox_rows_are_one_insert(notifying: Compute) -> None:
    """The create's start (versioned and legacy) is one statement in POST /servers' write
    turn, not one per row, after the flush's own (the first of which takes the turn); a
    flush telling of more rows than a statement takes writes them all, in order."""
    inserts: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO"):
            inserts.append(statement.split()[2].strip('"`').lower())

    event.listen(notifying.db.engine, "before_cursor_execute", seen)
    try:
        resp = notifying.create(notifying.cloud.admin)
        assert resp.status_code == 202, resp.text
    finally:
        event.remove(notifying.db.engine, "before_cursor_execute", seen)
    assert inserts.count("outbox") == 1
    assert inserts.index("outbox") > inserts.index("instance_actions")
    assert [m.body["event_type"] for m in _outbox(notifying.db)] == [
        "instance.create.start",
        "compute.instance.create.start",
    ]

    count = 2 * recorder.WRITE_CHUNK + 7
    rows = [
        envelope.row(
            exchange="kumotest",
            topic="t",
            priority="info",
            event_type=f"e{i}",
            publisher_id="p",
            payload={"i": i},
            resource_id=str(i),
            origin=envelope.Origin(),
        )
        for i in range(count)
    ]
    with notifying.db.session() as session:
        recorder.write(session, rows)
    written = _outbox(notifying.db, exchange="kumotest")
    assert [m.body["event_type"] for m in written] == [f"e{i}" for i in range(count)]


def test_a_server_deleted_before_it_was_placed_starts_and_ends_its_delete(
    notifying: Compute,
) -> None:
    admin = notifying.cloud.admin
    server_id = notifying.create(admin).json()["server"]["id"]
    assert notifying.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    messages = _outbox(notifying.db)
    events = [m.body["event_type"] for m in messages if "versioned" in m.row.routing_key]
    assert events == ["instance.create.start", "instance.delete.start", "instance.delete.end"]


def test_a_server_no_host_fits_ends_its_create_in_error(notifying: Compute) -> None:
    server_id = notifying.create(notifying.cloud.admin).json()["server"]["id"]
    with notifying.db.session() as session:
        session.get(m.Host, notifying.host_id).forced_down = True  # fenced after the request
    notifying.converge()
    assert notifying.show(server_id, notifying.cloud.admin)["status"] == "ERROR"
    errors = [m for m in _outbox(notifying.db) if m.row.routing_key.endswith(".error")]
    assert [(m.row.routing_key, m.body["event_type"], m.body["priority"]) for m in errors] == [
        ("versioned_notifications.error", "instance.create.error", "ERROR"),
        ("notifications.error", "compute.instance.create.error", "ERROR"),
    ]
    fault = errors[0].body["payload"]["nova_object.data"]["fault"]
    assert fault["nova_object.name"] == "ExceptionPayload"
    assert "No valid host" in fault["nova_object.data"]["exception_message"]


def test_an_action_without_a_nova_event_writes_nothing_and_stop_starts_power_off(
    notifying: Compute,
) -> None:
    admin = notifying.cloud.admin
    server_id = notifying.create(admin).json()["server"]["id"]
    notifying.converge()
    before = len(_outbox(notifying.db))
    assert notifying.action(server_id, admin, {"lock": None}).status_code == 202
    assert len(_outbox(notifying.db)) == before
    assert notifying.action(server_id, admin, {"os-stop": None}).status_code == 202
    latest = _outbox(notifying.db)[before:]
    assert [m.body["event_type"] for m in latest] == [
        "instance.power_off.start",
        "compute.instance.power_off.start",
    ]
    assert latest[0].body["payload"]["nova_object.data"]["task_state"] == "powering-off"


def test_neutron_glance_and_keystone_legacy_notifications(notifying: Compute) -> None:
    """The test's own image (made by Compute) is left out: it was registered before."""
    admin = notifying.cloud.admin
    client = notifying.client
    resp = client.post(f"{V2}/networks", json={"network": {"name": "n1"}}, headers=admin)
    assert resp.status_code == 201, resp.text
    network_id = resp.json()["network"]["id"]
    assert client.delete(f"{V2}/networks/{network_id}", headers=admin).status_code == 204
    resp = client.post(
        "/image/v2/images",
        json={"name": "i1", "disk_format": "raw", "container_format": "bare"},
        headers=admin,
    )
    assert resp.status_code == 201, resp.text
    image_id = resp.json()["id"]
    assert client.delete(f"/image/v2/images/{image_id}", headers=admin).status_code == 204
    resp = client.post("/identity/v3/projects", json={"project": {"name": "p1"}}, headers=admin)
    assert resp.status_code == 201, resp.text
    project_id = resp.json()["project"]["id"]

    messages = [
        m for m in _outbox(notifying.db, exchange=None) if m.row.resource_id != notifying.image_id
    ]
    found = [
        (m.row.exchange, m.row.routing_key, m.body["event_type"], m.row.resource_id)
        for m in messages
    ]
    assert found == [
        ("neutron", "notifications.info", "network.create.end", network_id),
        ("neutron", "notifications.info", "network.delete.end", network_id),
        ("glance", "notifications.info", "image.create", image_id),
        ("glance", "notifications.info", "image.delete", image_id),
        ("keystone", "notifications.info", "identity.project.created", project_id),
    ]
    created = messages[0].body
    assert created["publisher_id"] == "network.kumo-test"
    assert created["payload"]["network"]["name"] == "n1"
    assert created["payload"]["network"]["tenant_id"] == notifying.cloud.boot.admin_project_id
    assert messages[1].body["payload"] == {"network_id": network_id}
    assert messages[4].body["payload"] == {"resource_info": project_id}


@pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
def test_shelve_and_unshelve_start_and_end(notifying: Compute, tmp_path: Path) -> None:
    """Ends recorded by an agent's report (the shelve snapshot uploaded, the guest gone;
    unshelved and running) are the .end notifications, with the state they left."""
    notifying.loop.scratch_dir = tmp_path / "snapshots"
    admin = notifying.cloud.admin
    server_id = notifying.create(admin).json()["server"]["id"]
    notifying.converge()
    assert notifying.action(server_id, admin, {"shelve": None}).status_code == 202
    notifying.converge()
    assert notifying.show(server_id, admin)["status"] == "SHELVED_OFFLOADED"
    assert notifying.action(server_id, admin, {"unshelve": None}).status_code == 202
    notifying.converge()
    assert notifying.show(server_id, admin)["status"] == "ACTIVE"
    versioned = [m for m in _outbox(notifying.db) if "versioned" in m.row.routing_key]
    events = [m.body["event_type"] for m in versioned]
    assert events == [
        "instance.create.start",
        "instance.create.end",
        "instance.shelve.start",
        "instance.shelve.end",
        "instance.unshelve.start",
        "instance.unshelve.end",
    ]
    states = [m.body["payload"]["nova_object.data"]["state"] for m in versioned]
    assert states[3] == "shelved_offloaded" and states[5] == "active"

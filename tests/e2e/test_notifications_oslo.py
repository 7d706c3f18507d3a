"""Notifications from a live `kumo up` on the machine's real RabbitMQ, received by a
consumer kumo did not write: oslo.messaging's NotificationListener (the library Ceilometer
and every OpenStack service use), installed from PyPI in its own venv (.venv-oslo, pinned
in tests/e2e/notifications/requirements.txt, built here on first use with uv; a machine
that cannot build it skips, under CI=true that is a failure).

The first test checks what arrives: instance.create.end and instance.delete.end with the
fields of Nova's notification samples, and the legacy compute.instance.* ones. The second
puts a TCP proxy between kumo and RabbitMQ (never stopping RabbitMQ, which other tests
share), cuts it while kumo is connected, makes notifications while it is cut and restores
it: every notification arrives, in order per server, none twice per message id.

Each test routes on topics of its own ("kumotest-<uuid>.versioned"...) so parallel runs
never share a queue, and deletes the queues it used.
"""

from __future__ import annotations

import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import kombu
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tcpproxy import TcpProxy

from apihelpers import ACTION_FIELDS, CREATE_FIELDS
from computeapi import Api
from kumoproc import Cloud, clean_env, separate_venv_or_skip, start_cloud, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "notifications"
REQUIREMENTS = HERE / "requirements.txt"
LISTENER = HERE / "listener.py"
VENV = ROOT / ".venv-oslo"
RABBIT_PORT = 5672
RABBIT = f"amqp://guest:guest@127.0.0.1:{RABBIT_PORT}/"
OSLO_URL = f"rabbit://guest:guest@127.0.0.1:{RABBIT_PORT}/"  # oslo's name for the driver

LEGACY_FIELDS = {
    "tenant_id", "user_id", "instance_id", "display_name", "reservation_id", "hostname",
    "instance_type", "instance_type_id", "instance_flavor_id", "memory_mb", "disk_gb",
    "vcpus", "root_gb", "ephemeral_gb", "host", "node", "availability_zone", "created_at",
    "terminated_at", "deleted_at", "launched_at", "state", "state_description",
    "fixed_ips", "metadata", "image_meta",
}  # fmt: skip
LIFECYCLE = [
    "instance.create.start",
    "instance.create.end",
    "instance.delete.start",
    "instance.delete.end",
]


@pytest.fixture(scope="module")
def oslo_python() -> Path:
    return separate_venv_or_skip(VENV, REQUIREMENTS, "oslo.messaging") / "python"


@dataclass
class Topics:
    versioned: str
    legacy: str

    def env(self, url: str) -> dict[str, str]:
        return clean_env(
            KUMO_COMPUTE_HYPERVISOR="fake",
            KUMO_NOTIFICATIONS_URL=url,
            KUMO_NOTIFICATIONS_VERSIONED_TOPIC=self.versioned,
            KUMO_NOTIFICATIONS_TOPIC=self.legacy,
        )


@pytest.fixture
def topics() -> Iterator[Topics]:
    tag = f"kumotest-{uuid.uuid4().hex[:12]}"
    chosen = Topics(f"{tag}.versioned", f"{tag}.legacy")
    yield chosen
    with kombu.Connection(RABBIT) as connection:  # the queues kumo and the listener declared
        channel = connection.channel()
        for topic in (chosen.versioned, chosen.legacy):
            for priority in ("info", "error"):
                channel.queue_delete(f"{topic}.{priority}")


class Listener:
    """listener.py in .venv-oslo, consuming ``topics`` on exchange nova straight from
    RabbitMQ; what it received is read back from its output file."""

    def __init__(self, python: Path, topics: Topics, directory: Path) -> None:
        self.output = directory / "received.jsonl"
        self.output.touch()
        self.log = directory / "listener.log"
        command = [str(python), str(LISTENER), OSLO_URL, "nova", str(self.output)]
        command += [topics.versioned, topics.legacy]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: "listening" in self.log.read_text() or self._exited(),
            60,
            "the oslo.messaging listener to start",
        )

    def _exited(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"listener exited:\n{self.log.read_text()}")

    def received(self) -> list[dict[str, Any]]:
        self._exited()
        lines = self.output.read_text().splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def of(self, server_id: str) -> list[dict[str, Any]]:
        found = []
        for message in self.received():
            payload = message["payload"]
            data = payload.get("nova_object.data", payload)
            if server_id in (data.get("uuid"), data.get("instance_id")):
                found.append(message)
        return found

    def wait_for_events(self, server_id: str, events: list[str], timeout: float = 90) -> None:
        def arrived() -> bool:
            have = [m["event_type"] for m in self.of(server_id)]
            return all(event in have for event in events)

        wait_for(arrived, timeout, f"{events} of {server_id} at the listener")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def listener(oslo_python: Path, topics: Topics, tmp_path: Path) -> Iterator[Listener]:
    running = Listener(oslo_python, topics, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def _cloud(tmp_path: Path, topics: Topics, url: str) -> Cloud:
    return start_cloud(tmp_path / "state", env=topics.env(url))


def _create(api: Api, name: str) -> str:
    resp = api.create_server(name, api.image_id())
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    return server_id


def _metric(cloud: Cloud, name: str) -> float:
    """A sample of `kumo up`'s /metrics (the API's and its controller's registry)."""
    text = httpx.get(f"{cloud.url}/metrics", timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"no {name} in /metrics")


def _backlog(cloud: Cloud) -> float:
    return _metric(cloud, "kumo_outbox_backlog")


def test_an_oslo_listener_receives_nova_notifications(
    listener: Listener, topics: Topics, tmp_path: Path
) -> None:
    cloud = _cloud(tmp_path, topics, RABBIT)
    try:
        api = Api(cloud.url, cloud.admin_password)
        server_id = _create(api, "notified")
        api.wait_settled([server_id], 90)
        api.delete_server(server_id)
        api.wait_gone(server_id)
        listener.wait_for_events(server_id, [*LIFECYCLE, "compute.instance.delete.end"])
        project_id = api.project_id()
        api.close()
    finally:
        cloud.stop()

    messages = listener.of(server_id)
    versioned = {m["event_type"]: m for m in messages if m["event_type"].startswith("instance.")}
    assert [m["event_type"] for m in messages if m["event_type"] in LIFECYCLE] == LIFECYCLE
    create_end, delete_end = versioned["instance.create.end"], versioned["instance.delete.end"]
    for message in (create_end, delete_end):
        assert message["priority"] == "INFO"
        assert message["publisher_id"].startswith("nova-compute:")
        assert message["message_id"] and message["timestamp"]
        assert message["payload"]["nova_object.namespace"] == "nova"
    assert create_end["payload"]["nova_object.name"] == "InstanceCreatePayload"
    assert create_end["payload"]["nova_object.version"] == "1.13"
    data = create_end["payload"]["nova_object.data"]
    assert set(data) == CREATE_FIELDS
    assert (data["uuid"], data["display_name"], data["tenant_id"]) == (
        server_id,
        "notified",
        project_id,
    )
    assert (data["state"], data["power_state"], data["task_state"]) == ("active", "running", None)
    assert data["host"] and data["launched_at"] and data["fault"] is None
    assert data["flavor"]["nova_object.name"] == "FlavorPayload"
    assert data["flavor"]["nova_object.data"]["vcpus"] >= 1
    assert all(ip["nova_object.name"] == "IpPayload" for ip in data["ip_addresses"])
    assert delete_end["payload"]["nova_object.name"] == "InstanceActionPayload"
    deleted = delete_end["payload"]["nova_object.data"]
    assert set(deleted) == ACTION_FIELDS
    assert (deleted["uuid"], deleted["state"]) == (server_id, "deleted")
    assert deleted["deleted_at"] and deleted["terminated_at"]

    legacy = {m["event_type"]: m for m in messages if m["event_type"].startswith("compute.")}
    assert {"compute.instance.create.end", "compute.instance.delete.end"} <= set(legacy)
    legacy_end = legacy["compute.instance.create.end"]["payload"]
    assert set(legacy_end) >= LEGACY_FIELDS
    assert (legacy_end["instance_id"], legacy_end["state"]) == (server_id, "active")
    ids = [m["message_id"] for m in listener.received()]
    assert len(ids) == len(set(ids))


def test_a_broker_cut_mid_stream_loses_nothing_and_sends_nothing_twice(
    listener: Listener, topics: Topics, tmp_path: Path
) -> None:
    proxy = TcpProxy(RABBIT_PORT)
    cloud = _cloud(tmp_path, topics, f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    try:
        api = Api(cloud.url, cloud.admin_password)
        first = _create(api, "before-the-cut")
        api.wait_settled([first], 90)
        # kumo's publisher is connected through the proxy and has sent these.
        listener.wait_for_events(first, ["instance.create.end"])

        failures = _metric(cloud, "kumo_outbox_publish_failures_total")
        proxy.drop()
        during = [_create(api, f"during-the-cut-{i}") for i in range(3)]
        api.wait_settled(during, 90)
        api.delete_server(first)
        api.wait_gone(first)
        # The outage holds them in the outbox: nothing reached the broker.
        wait_for(lambda: _backlog(cloud) >= 4 * 2 + 2 * 2 or None, 30, "an outbox backlog")
        # The publisher lost the broker mid-stream and has failed to reconnect since.
        wait_for(
            lambda: _metric(cloud, "kumo_outbox_publish_failures_total") >= failures + 2 or None,
            60,
            "the publisher to fail to reconnect",
        )
        assert all(listener.of(server_id) == [] for server_id in during)
        assert _backlog(cloud) >= 4 * 2 + 2 * 2

        proxy.restore()
        for server_id in during:
            listener.wait_for_events(server_id, ["instance.create.start", "instance.create.end"])
        listener.wait_for_events(first, ["instance.delete.end"])
        wait_for(lambda: _backlog(cloud) == 0 or None, 30, "the outbox to empty")
        api.close()
    finally:
        cloud.stop()
        proxy.close()

    received = listener.received()
    ids = [m["message_id"] for m in received]
    assert len(ids) == len(set(ids)), "a message was published twice"
    for server_id in [first, *during]:
        events = [m["event_type"] for m in listener.of(server_id)]
        versioned = [e for e in events if e.startswith("instance.")]
        legacy = [e for e in events if e.startswith("compute.")]
        wanted = LIFECYCLE if server_id == first else LIFECYCLE[:2]
        assert versioned == wanted, f"{server_id}: {events}"
        assert legacy == ["compute." + e for e in wanted], f"{server_id}: {events}"

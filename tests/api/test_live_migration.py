"""Live migration through the compute API between two fake hosts, each with its agent loop,
on every database backend: the move itself, the migrations API at its version boundaries
(2.22 force_complete, 2.23 list/show and migration_type, 2.24 abort, 2.25 "auto"), bad
requests that change nothing, abort, force-complete, deadlines and deletes mid-move."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.agent.compute import ComputeLoop
from kumo.api.compute.microversion import MAX_VERSION
from kumo.config import SchedulerConfig
from kumo.controller import scheduler
from kumo.core.checks import run_checks
from kumo.core.compute.stuck import resolve_all
from kumo.db import models as m
from kumo.drivers.hypervisor import fake as fake_driver
from kumo.drivers.hypervisor.fake import FakeDriver

pytestmark = pytest.mark.skipif(
    not MAX_VERSION.at_least("2.25"),
    reason="live migration is served from compute microversion 2.25, which the cloud "
    "advertises once 2.11-2.21 are merged",
)

V21 = "/compute/v2.1"
ROUNDS = 12


def v(version: str) -> dict[str, str]:
    return {"X-OpenStack-Nova-API-Version": version}


class Pair(Compute):
    """Two fake hosts that can live-migrate between them, each with its agent loop."""

    def __init__(self, cloud: Any, tmp_path: Path) -> None:
        super().__init__(cloud, tmp_path)
        self.loop.migration_slice = 0.05
        driver2 = FakeDriver(tmp_path / "fake2")
        self.host2 = str(uuid.uuid4())
        self.register_driver(self.host_id, "fake-1", self.loop.driver)
        self.register_driver(self.host2, "fake-2", driver2)
        self.loop2 = ComputeLoop(
            self.agent_client, "/agent/v1", self.host2, driver2, migration_slice=0.05
        )
        self.loops = {self.host_id: self.loop, self.host2: self.loop2}

    def register_driver(self, host_id: str, name: str, driver: FakeDriver) -> None:
        body = {
            "host": {
                "id": host_id,
                "name": name,
                "agent_api_versions": ["v1"],
                "capabilities": {"hypervisor": driver.capabilities()},
                "inventory": {"vcpus": 8, "memory_mb": 8704, "disk_gb": 100},
            }
        }
        resp = self.agent_client.post("/agent/v1/hosts", json=body)
        assert resp.status_code == 200, resp.text

    def converge(self) -> None:
        scheduler.schedule_pending(self.db, SchedulerConfig(), 60.0)
        self.loop.sync_once()
        self.loop2.sync_once()

    def settle(self, server_id: str) -> dict[str, Any]:
        """Agent passes until the server is no longer MIGRATING and no agent has a part
        left in any migration (each pass is what the long-poll loops do)."""
        for _ in range(ROUNDS):
            self.converge()
            shown = self.show(server_id, self.cloud.admin)
            with self.db.session() as session:
                open_parts = (
                    session.query(m.Migration)
                    .filter(
                        (m.Migration.source_done.is_(False)) | (m.Migration.dest_done.is_(False))
                    )
                    .count()
                )
            if shown["status"] != "MIGRATING" and not open_parts:
                return shown
        raise AssertionError(f"still moving after {ROUNDS} rounds: {shown}")

    def server(self) -> tuple[str, str, str]:
        """An ACTIVE server: its id, its host and the other host."""
        server_id = self.create(self.cloud.admin).json()["server"]["id"]
        self.converge()
        with self.db.session() as session:
            source = session.get(m.Instance, server_id).host_id
        other = self.host2 if source == self.host_id else self.host_id
        return server_id, source, other

    def live(
        self,
        server_id: str,
        body: dict[str, Any],
        version: str = "2.25",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.client.post(
            f"{SERVERS}/{server_id}/action",
            json={"os-migrateLive": body},
            headers={**(headers or self.cloud.admin), **v(version)},
        )

    def get(self, path: str, version: str, status: int = 200) -> Any:
        resp = self.client.get(f"{V21}{path}", headers={**self.cloud.admin, **v(version)})
        assert resp.status_code == status, resp.text
        return resp.json()

    def migration(self, server_id: str) -> m.Migration:
        with self.db.session() as session:
            row = (
                session.query(m.Migration)
                .filter_by(instance_uuid=server_id)
                .order_by(m.Migration.id.desc())
                .first()
            )
            assert row is not None
            session.expunge(row)
            return row

    def allocations(self) -> dict[str, str]:
        with self.db.session() as session:
            return {a.instance_id: a.host_id for a in session.query(m.Allocation).all()}

    def name(self, host_id: str) -> str:
        return "fake-1" if host_id == self.host_id else "fake-2"


@pytest.fixture
def pair(cloud: Any, tmp_path: Path) -> Pair:
    return Pair(cloud, tmp_path)


AUTO = {"host": None, "block_migration": "auto"}


def test_live_migration_moves_server_guest_and_allocation(pair: Pair) -> None:
    server_id, source, dest = pair.server()
    src_driver, dst_driver = pair.loops[source].driver, pair.loops[dest].driver
    console_before = src_driver.console_log(server_id).decode()
    resp = pair.live(server_id, AUTO)
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    shown = pair.show(server_id, pair.cloud.admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("MIGRATING", "migrating")
    (listed,) = pair.get(f"/servers/{server_id}/migrations", "2.23")["migrations"]
    assert (listed["status"], listed["server_uuid"]) == ("queued", server_id)
    assert (listed["source_compute"], listed["dest_compute"]) == (
        pair.name(source),
        pair.name(dest),
    )
    assert isinstance(listed["id"], int)
    one = pair.get(f"/servers/{server_id}/migrations/{listed['id']}", "2.23")["migration"]
    assert one == listed
    (row,) = pair.get("/os-migrations", "2.23")["migrations"]
    assert (row["migration_type"], row["instance_uuid"]) == ("live-migration", server_id)
    assert row["links"][0]["href"].endswith(f"/servers/{server_id}/migrations/{listed['id']}")
    assert row["old_instance_type_id"] == row["new_instance_type_id"] == 1
    claims = pair.allocations()
    assert claims[server_id] == source and claims[pair.migration(server_id).uuid] == dest

    shown = pair.settle(server_id)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert shown["OS-EXT-SRV-ATTR:host"] == pair.name(dest)
    assert src_driver.get_state(server_id).power_state == "nostate"
    assert dst_driver.get_state(server_id).power_state == "running"
    after = dst_driver.console_log(server_id).decode()
    assert after.startswith(console_before.rstrip("\n"))  # the same guest, going on
    assert pair.allocations() == {server_id: dest}
    row = pair.migration(server_id)
    assert (row.status, row.source_done, row.dest_done) == ("completed", True, True)
    assert row.memory_remaining_bytes == 0 and row.memory_total_bytes == 128 << 20
    assert pair.get(f"/servers/{server_id}/migrations", "2.23")["migrations"] == []
    (done,) = pair.get("/os-migrations", "2.23")["migrations"]
    assert done["status"] == "completed" and "links" not in done
    old = pair.get("/os-migrations", "2.1")["migrations"][0]
    assert "migration_type" not in old and "links" not in old
    actions = pair.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=pair.cloud.admin
    ).json()["instanceActions"]
    assert "live-migration" in [a["action"] for a in actions]
    with pair.db.session() as session:
        assert run_checks(session) == []
    # And back again, to the named host, with the 2.24 body shape.
    body = {"host": pair.name(source), "block_migration": True, "disk_over_commit": False}
    assert pair.live(server_id, body, "2.24").status_code == 202
    assert pair.settle(server_id)["OS-EXT-SRV-ATTR:host"] == pair.name(source)
    assert pair.allocations() == {server_id: source}


@pytest.mark.parametrize(
    ("version", "body", "needle"),
    [
        (
            "2.25",
            {"host": None, "block_migration": "auto", "disk_over_commit": False},
            "disk_over_commit",
        ),
        ("2.25", {"host": None}, "block_migration"),
        ("2.25", {"block_migration": True}, "host"),
        ("2.25", {"host": None, "block_migration": "sometimes"}, "block_migration"),
        (
            "2.24",
            {"host": None, "block_migration": "auto", "disk_over_commit": False},
            "block_migration",
        ),
        ("2.24", {"host": None, "block_migration": True}, "disk_over_commit"),
        (
            "2.1",
            {"host": None, "block_migration": True, "disk_over_commit": "maybe"},
            "disk_over_commit",
        ),
        ("2.25", {"host": "no-such-host", "block_migration": "auto"}, "could not be found"),
        ("2.25", {"host": "SOURCE", "block_migration": "auto"}, "current host"),
        ("2.25", {"host": "DEST", "block_migration": False}, "not on shared storage"),
        ("2.25", {"host": None, "block_migration": False}, "No valid host"),
    ],
)
def test_bad_requests_are_400_and_write_nothing(
    pair: Pair, version: str, body: dict[str, Any], needle: str
) -> None:
    server_id, source, dest = pair.server()
    if body.get("host") in ("SOURCE", "DEST"):
        body = {**body, "host": pair.name(source if body["host"] == "SOURCE" else dest)}
    before = pair.allocations()
    resp = pair.live(server_id, body, version)
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["badRequest"]["message"]
    assert pair.allocations() == before
    with pair.db.session() as session:
        assert session.query(m.Migration).count() == 0
    shown = pair.show(server_id, pair.cloud.admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)


def test_policy_and_state_conflicts(pair: Pair) -> None:
    cloud = pair.cloud
    project = cloud.project("lm-p")
    _, token = cloud.member("lm-u", project["id"])
    server_id = pair.create(cloud.h(token)).json()["server"]["id"]
    pair.converge()
    resp = pair.live(server_id, AUTO, headers=cloud.h(token))
    assert resp.status_code == 403, resp.text
    resp = pair.client.get(f"{V21}/os-migrations", headers={**cloud.h(token), **v("2.23")})
    assert resp.status_code == 403
    resp = pair.client.get(
        f"{SERVERS}/{server_id}/migrations", headers={**cloud.h(token), **v("2.23")}
    )
    assert resp.status_code == 403
    assert pair.live(str(uuid.uuid4()), AUTO).status_code == 404
    assert pair.action(server_id, cloud.admin, {"os-stop": None}).status_code == 202
    assert pair.live(server_id, AUTO).status_code == 409  # a task in flight
    pair.converge()
    resp = pair.live(server_id, AUTO)  # SHUTOFF: not ACTIVE or PAUSED
    assert resp.status_code == 409 and "conflictingRequest" in resp.json()
    assert pair.action(server_id, cloud.admin, {"os-start": None}).status_code == 202
    pair.converge()
    assert pair.live(server_id, AUTO).status_code == 202
    assert pair.live(server_id, AUTO).status_code == 409  # already moving
    pair.settle(server_id)


def test_paused_server_moves_and_stays_paused(pair: Pair) -> None:
    server_id, _, dest = pair.server()
    assert pair.action(server_id, pair.cloud.admin, {"pause": None}).status_code == 202
    pair.converge()
    assert pair.live(server_id, AUTO).status_code == 202
    assert pair.show(server_id, pair.cloud.admin)["status"] == "MIGRATING"
    shown = pair.settle(server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("PAUSED", pair.name(dest))
    assert pair.loops[dest].driver.get_state(server_id).power_state == "paused"


def test_version_boundaries(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_driver, "MIGRATION_STEPS", None)  # running until told
    server_id, _, dest = pair.server()
    assert pair.live(server_id, AUTO).status_code == 202
    mid = pair.get(f"/servers/{server_id}/migrations", "2.23")["migrations"][0]["id"]
    base = f"{SERVERS}/{server_id}/migrations"
    admin = pair.cloud.admin
    pair.get(f"/servers/{server_id}/migrations", "2.22", 404)
    pair.get(f"/servers/{server_id}/migrations/{mid}", "2.22", 404)
    force = {"force_complete": None}
    assert (
        pair.client.post(
            f"{base}/{mid}/action", json=force, headers={**admin, **v("2.21")}
        ).status_code
        == 404
    )
    assert pair.client.delete(f"{base}/{mid}", headers={**admin, **v("2.23")}).status_code == 404
    # Queued (the destination is not ready yet): neither can be done.
    resp = pair.client.post(f"{base}/{mid}/action", json=force, headers={**admin, **v("2.22")})
    assert resp.status_code == 400 and "queued" in resp.json()["badRequest"]["message"]
    resp = pair.client.delete(f"{base}/{mid}", headers={**admin, **v("2.24")})
    assert resp.status_code == 400
    resp = pair.client.post(
        f"{base}/{mid}/action", json={"force_complete": 1}, headers={**admin, **v("2.22")}
    )
    assert resp.status_code == 400
    pair.get(f"/servers/{server_id}/migrations/{mid + 100}", "2.23", 404)
    pair.get(f"/servers/{server_id}/migrations/nope", "2.23", 404)
    pair.get(f"/servers/{server_id}/migrations/{10**20}", "2.23", 404)  # not a 500
    pair.converge()  # destination ready, source copying (it never converges by itself)
    pair.converge()
    shown = pair.get(f"/servers/{server_id}/migrations/{mid}", "2.23")["migration"]
    assert shown["status"] == "running" and shown["dest_host"] == "fake"
    assert shown["memory_total_bytes"] == 128 << 20 and shown["memory_remaining_bytes"]
    resp = pair.client.post(f"{base}/{mid}/action", json=force, headers={**admin, **v("2.22")})
    assert resp.status_code == 202, resp.text
    shown = pair.settle(server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", pair.name(dest))
    assert pair.loops[dest].driver.get_state(server_id).power_state == "running"
    resp = pair.client.delete(f"{base}/{mid}", headers={**admin, **v("2.24")})
    assert resp.status_code in (400, 409)  # over: nothing to abort


def test_abort_keeps_the_server_on_its_host(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fake_driver, "MIGRATION_STEPS", None)
    server_id, source, dest = pair.server()
    assert pair.live(server_id, AUTO).status_code == 202
    pair.converge()
    mid = pair.migration(server_id).id
    resp = pair.client.delete(
        f"{SERVERS}/{server_id}/migrations/{mid}", headers={**pair.cloud.admin, **v("2.24")}
    )
    assert resp.status_code == 202, resp.text
    shown = pair.settle(server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", pair.name(source))
    row = pair.migration(server_id)
    assert (row.status, row.source_done, row.dest_done) == ("cancelled", True, True)
    assert pair.loops[source].driver.get_state(server_id).power_state == "running"
    assert pair.loops[dest].driver.get_state(server_id).power_state == "nostate"
    assert pair.allocations() == {server_id: source}
    (listed,) = pair.get(f"/os-migrations?status=cancelled&instance_uuid={server_id}", "2.23")[
        "migrations"
    ]
    assert listed["id"] == mid
    assert pair.get("/os-migrations?migration_type=resize", "2.23")["migrations"] == []
    assert pair.get(f"/os-migrations?host={pair.name(dest)}", "2.23")["migrations"]
    with pair.db.session() as session:
        assert run_checks(session) == []


def test_deadline_ends_migration_in_error_on_the_source(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake_driver, "MIGRATION_STEPS", None)
    server_id, source, dest = pair.server()
    assert pair.live(server_id, AUTO).status_code == 202
    pair.converge()
    assert pair.migration(server_id).status == "running"
    with pair.db.session() as session:
        session.get(m.Instance, server_id).task_deadline = dt.datetime(2000, 1, 1)
    assert resolve_all(pair.db) == 1
    assert pair.migration(server_id).status == "error"
    shown = pair.settle(server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", pair.name(source))
    assert pair.loops[source].driver.get_state(server_id).power_state == "running"
    assert pair.loops[dest].driver.get_state(server_id).power_state == "nostate"
    assert pair.allocations() == {server_id: source}


def test_agent_restart_mid_copy_and_delete_mid_move(
    pair: Pair, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(fake_driver, "MIGRATION_STEPS", 6)
    server_id, source, dest = pair.server()
    assert pair.live(server_id, AUTO).status_code == 202
    pair.converge()
    assert pair.migration(server_id).status == "running"
    # The source's agent restarts: a new loop and driver over the same host state.
    old = pair.loops[source]
    pair.loops[source] = ComputeLoop(
        pair.agent_client,
        "/agent/v1",
        source,
        FakeDriver(old.driver.state_dir),
        migration_slice=0.05,
    )
    if source == pair.host_id:
        pair.loop = pair.loops[source]
    else:
        pair.loop2 = pair.loops[source]
    assert pair.settle(server_id)["OS-EXT-SRV-ATTR:host"] == pair.name(dest)
    # Deleted while it moves back: both halves go, nothing is left claimed.
    assert pair.live(server_id, AUTO).status_code == 202
    pair.converge()
    assert pair.client.delete(f"{SERVERS}/{server_id}", headers=pair.cloud.admin).status_code == 204
    for _ in range(ROUNDS):
        pair.converge()
    assert pair.client.get(f"{SERVERS}/{server_id}", headers=pair.cloud.admin).status_code == 404
    for loop in pair.loops.values():
        assert loop.driver.get_state(server_id).power_state == "nostate"
    assert pair.allocations() == {}
    with pair.db.session() as session:
        assert run_checks(session) == []


def test_destination_is_prepared_with_the_sources_display(pair: Pair) -> None:
    """The source's agent reports the display its guest runs with (with its consoles); the
    destination's work item carries it and the destination starts the guest with it. A
    report from an agent older than displays (or none at all) means none."""
    from kumo.core.compute import reports

    server_id, source, dest = pair.server()

    def observe(display: str | None) -> None:
        with pair.db.session() as session:
            generation = session.get(m.Instance, server_id).generation
        consoles = {"address": "127.0.0.1", "vnc_port": 5901, "serial_port": None}
        body = {
            "power_state": "running",
            "generation": generation,
            "consoles": consoles if display == "old" else {**consoles, "display": display},
        }
        resp = pair.agent_client.post(
            f"/agent/v1/hosts/{source}/instances/{server_id}/observation", json=body
        )
        assert resp.status_code == 204, resp.text

    def seen_by_dest() -> Any:
        with pair.db.session() as session:
            items = reports.work_for_host(session, dest)
        (item,) = [i for i in items if i["id"] == server_id]
        assert item["on_host"] is False and item["migration"]["role"] == "dest"
        return item["migration"]["source_display"]

    assert pair.live(server_id, AUTO).status_code == 202
    observe("vga")
    assert seen_by_dest() == "vga"
    observe("old")  # an agent from before displays says nothing of it
    assert seen_by_dest() == "none"
    bad = {"address": "127.0.0.1", "display": "v g a"}
    resp = pair.agent_client.post(
        f"/agent/v1/hosts/{source}/instances/{server_id}/observation",
        json={"power_state": "running", "generation": 1, "consoles": bad},
    )
    assert resp.status_code == 400 and "consoles.display" in resp.text, resp.text
    # The fake guest has no display (the fake agents build minimal specs): a destination
    # prepared with the source's none takes it.
    shown = pair.settle(server_id)
    assert shown["OS-EXT-SRV-ATTR:host"] == pair.name(dest)
    moved = pair.loops[dest].driver
    assert isinstance(moved, FakeDriver)
    assert moved._host.guests[server_id].spec.display == "none"

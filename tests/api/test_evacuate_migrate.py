"""Evacuate and cold migrate through the compute API between two fake hosts, each with its
agent loop, on every database backend: the moves themselves (allocations, guests, the
migration rows as Nova records them), what a host that comes back from the dead does with
the guest it still has, and every refused request (policy, host state, server state, bodies
at the microversion boundaries), which must change nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_live_migration import AUTO, Pair, v
from test_servers import SERVERS

from kumo.config import SchedulerConfig
from kumo.controller import scheduler
from kumo.core.checks import run_checks
from kumo.core.compute.stuck import resolve_all
from kumo.db import models as m
from kumo.db.action_events import InstanceActionEvent

import netapi

FORCE_DOWN = "/compute/v2.1/os-services/force-down"


class Evac(Pair):
    def force_down(self, host_id: str, down: bool = True) -> None:
        body = {"host": self.name(host_id), "binary": "nova-compute", "forced_down": down}
        resp = self.client.put(FORCE_DOWN, json=body, headers={**self.cloud.admin, **v("2.11")})
        assert resp.status_code == 200, resp.text

    def evacuate(
        self,
        server_id: str,
        body: Any,
        version: str = "2.14",
        headers: dict[str, str] | None = None,
    ) -> Any:
        return self.client.post(
            f"{SERVERS}/{server_id}/action",
            json={"evacuate": body},
            headers={**(headers or self.cloud.admin), **v(version)},
        )

    def only(self, host_id: str, rounds: int = 3) -> None:
        """Scheduler passes and agent passes of one host only (the other is dead)."""
        for _ in range(rounds):
            scheduler.schedule_pending(self.db, SchedulerConfig(), 60.0)
            self.loops[host_id].sync_once()

    def check_clean(self) -> None:
        with self.db.session() as session:
            assert run_checks(session) == []


@pytest.fixture
def evac(cloud: Any, tmp_path: Path) -> Evac:
    return Evac(cloud, tmp_path)


def test_evacuate_rebuilds_on_another_host_and_the_revived_host_cleans_up(evac: Evac) -> None:
    server_id, source, dest = evac.server()
    src_driver, dst_driver = evac.loops[source].driver, evac.loops[dest].driver
    evac.force_down(source)
    resp = evac.evacuate(server_id, {})
    assert resp.status_code == 200, resp.text
    assert resp.content == b""  # 2.14: no adminPass
    shown = evac.show(server_id, evac.cloud.admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("REBUILD", "rebuilding")
    assert shown["OS-EXT-SRV-ATTR:host"] == evac.name(dest)
    assert evac.allocations() == {server_id: dest}  # the dead host's share is released
    row = evac.migration(server_id)
    assert (row.migration_type, row.status) == ("evacuation", "accepted")
    assert (row.source_compute, row.dest_compute) == (evac.name(source), evac.name(dest))

    evac.only(dest)
    shown = evac.show(server_id, evac.cloud.admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert (shown["id"], shown["name"]) == (server_id, "vm")
    assert dst_driver.get_state(server_id).power_state == "running"
    row = evac.migration(server_id)
    assert (row.status, row.dest_done, row.source_done) == ("done", True, False)
    (listed,) = evac.get("/os-migrations?migration_type=evacuation", "2.23")["migrations"]
    assert (listed["status"], listed["instance_uuid"]) == ("done", server_id)
    evac.check_clean()
    actions = evac.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=evac.cloud.admin
    ).json()["instanceActions"]
    assert "evacuate" in [a["action"] for a in actions]

    # The dead host comes back with the old guest still running: it destroys it, never
    # restarts it, and the migration is completed.
    assert src_driver.get_state(server_id).power_state == "running"
    evac.force_down(source, False)
    evac.only(source)
    assert src_driver.get_state(server_id).power_state == "nostate"
    assert dst_driver.get_state(server_id).power_state == "running"
    row = evac.migration(server_id)
    assert (row.status, row.source_done, row.dest_done) == ("completed", True, True)
    evac.only(source)  # nothing left to do there
    assert src_driver.get_state(server_id).power_state == "nostate"
    assert evac.show(server_id, evac.cloud.admin)["OS-EXT-SRV-ATTR:host"] == evac.name(dest)
    evac.check_clean()


def test_stopped_server_stays_stopped_and_old_versions_get_a_password(evac: Evac) -> None:
    server_id, source, dest = evac.server()
    assert evac.action(server_id, evac.cloud.admin, {"os-stop": None}).status_code == 202
    evac.converge()
    evac.force_down(source)
    body = {"host": evac.name(dest), "onSharedStorage": False, "adminPass": "s3cret"}
    resp = evac.evacuate(server_id, body, "2.13")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"adminPass": "s3cret"}
    evac.only(dest)
    shown = evac.show(server_id, evac.cloud.admin)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("SHUTOFF", evac.name(dest))
    assert evac.loops[dest].driver.get_state(server_id).power_state == "shutdown"
    evac.check_clean()
    # A generated password when none is given, at 2.1.
    other = evac.create(evac.cloud.admin).json()["server"]["id"]
    evac.only(dest)
    evac.force_down(dest)
    evac.force_down(source, False)
    resp = evac.evacuate(other, {"host": None, "onSharedStorage": "false"}, "2.1")
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json()["adminPass"], str) and resp.json()["adminPass"]


def test_error_server_comes_back_active(evac: Evac) -> None:
    server_id, source, dest = evac.server()
    with evac.db.session() as session:
        session.get(m.Instance, server_id).vm_state = "error"
    evac.force_down(source)
    assert evac.evacuate(server_id, {}).status_code == 200
    evac.only(dest)
    assert evac.show(server_id, evac.cloud.admin)["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("version", "body", "needle"),
    [
        ("2.14", {"onSharedStorage": False}, "onSharedStorage"),
        ("2.13", {}, "'onSharedStorage' is a required property"),
        ("2.13", {"onSharedStorage": "perhaps"}, "onSharedStorage"),
        ("2.13", {"onSharedStorage": True, "adminPass": "x"}, "existing disk"),
        ("2.14", {"force": True}, "force"),
        ("2.14", {"host": ""}, "host"),
        ("2.14", {"host": 7}, "host"),
        ("2.14", {"adminPass": 7}, "adminPass"),
        ("2.14", None, "evacuate"),
        ("2.14", {"host": "SOURCE"}, "can't be the same one"),
    ],
)
def test_bad_bodies_are_400_and_write_nothing(
    evac: Evac, version: str, body: Any, needle: str
) -> None:
    server_id, source, _ = evac.server()
    evac.force_down(source)
    if isinstance(body, dict) and body.get("host") == "SOURCE":
        body = {"host": evac.name(source)}
    resp = evac.evacuate(server_id, body, version)
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["badRequest"]["message"]
    _nothing_changed(evac, server_id, source)


def _nothing_changed(evac: Evac, server_id: str, source: str) -> None:
    assert evac.allocations() == {server_id: source}
    with evac.db.session() as session:
        assert session.query(m.Migration).count() == 0
    shown = evac.show(server_id, evac.cloud.admin)
    assert shown["OS-EXT-SRV-ATTR:host"] == evac.name(source)
    assert shown["OS-EXT-STS:task_state"] is None


def test_refusals_policy_host_up_state_and_no_host(evac: Evac) -> None:
    cloud = evac.cloud
    project = cloud.project("ev-p")
    _, token = cloud.member("ev-u", project["id"])
    server_id = evac.create(cloud.h(token)).json()["server"]["id"]
    evac.converge()
    with evac.db.session() as session:
        source = session.get(m.Instance, server_id).host_id
    dest = evac.host2 if source == evac.host_id else evac.host_id
    # Not an admin: 403, whatever the host's state.
    resp = evac.evacuate(server_id, {}, headers=cloud.h(token))
    assert resp.status_code == 403, resp.text
    # The host is up: Nova's 400.
    resp = evac.evacuate(server_id, {})
    assert resp.status_code == 400
    assert resp.json()["badRequest"]["message"] == (
        f"Compute service of {evac.name(source)} is still in use."
    )
    _nothing_changed(evac, server_id, source)
    # Unknown named host: 404; unknown server: 404.
    resp = evac.evacuate(server_id, {"host": "nowhere"})
    assert resp.status_code == 404 and "nowhere" in resp.json()["itemNotFound"]["message"]
    assert evac.evacuate("6a1c8b4e-0000-4000-8000-000000000000", {}).status_code == 404
    # Paused: not ACTIVE, STOPPED or ERROR (409), even on a dead host.
    assert evac.action(server_id, cloud.admin, {"pause": None}).status_code == 202
    evac.converge()
    evac.force_down(source)
    resp = evac.evacuate(server_id, {})
    assert resp.status_code == 409 and "conflictingRequest" in resp.json()
    evac.force_down(source, False)
    assert evac.action(server_id, cloud.admin, {"unpause": None}).status_code == 202
    evac.converge()
    # A task in flight: 409.
    evac.force_down(source)
    with evac.db.session() as session:
        session.get(m.Instance, server_id).task_state = "powering-off"
    assert evac.evacuate(server_id, {}).status_code == 409
    with evac.db.session() as session:
        session.get(m.Instance, server_id).task_state = None
    # Down by heartbeat alone counts as down too; with every other host down: no host.
    evac.force_down(source, False)
    with evac.db.session() as session:
        session.get(m.Host, source).last_heartbeat_at = None
    evac.force_down(dest)
    resp = evac.evacuate(server_id, {})
    assert resp.status_code == 400
    assert "No valid host was found" in resp.json()["badRequest"]["message"]
    _nothing_changed(evac, server_id, source)
    evac.force_down(dest, False)
    assert evac.evacuate(server_id, {}).status_code == 200
    assert evac.evacuate(server_id, {}).status_code == 409  # already rebuilding


def test_stuck_rebuild_ends_the_evacuation_in_error(evac: Evac) -> None:
    server_id, source, _ = evac.server()
    evac.force_down(source)
    assert evac.evacuate(server_id, {}).status_code == 200
    with evac.db.session() as session:
        instance = session.get(m.Instance, server_id)
        instance.task_deadline = instance.task_deadline.replace(year=2000)
    assert resolve_all(evac.db) == 1
    assert evac.show(server_id, evac.cloud.admin)["status"] == "ERROR"
    row = evac.migration(server_id)
    assert (row.status, row.dest_done) == ("error", True)
    # The old host still cleans up when it comes back.
    evac.force_down(source, False)
    evac.only(source)
    assert evac.loops[source].driver.get_state(server_id).power_state == "nostate"
    assert evac.migration(server_id).source_done is True


def test_delete_after_evacuation_is_cleaned_on_both_hosts(evac: Evac) -> None:
    server_id, source, dest = evac.server()
    evac.force_down(source)
    assert evac.evacuate(server_id, {}).status_code == 200
    evac.only(dest)
    assert evac.client.delete(f"{SERVERS}/{server_id}", headers=evac.cloud.admin).status_code == 204
    evac.only(dest)
    assert evac.loops[dest].driver.get_state(server_id).power_state == "nostate"
    evac.force_down(source, False)
    evac.only(source)
    assert evac.loops[source].driver.get_state(server_id).power_state == "nostate"
    assert evac.allocations() == {}
    evac.check_clean()


# --- cold migration ------------------------------------------------------------------------


def _migrate(
    evac: Evac, server_id: str, body: Any = None, headers: dict[str, str] | None = None
) -> Any:
    return evac.client.post(
        f"{SERVERS}/{server_id}/action",
        json={"migrate": body},
        headers={**(headers or evac.cloud.admin), **v("2.25")},
    )


def _settle(evac: Evac, server_id: str) -> dict[str, Any]:
    """Both agents' passes until the server's status is no longer in flight."""
    for _ in range(8):
        evac.converge()
        shown = evac.show(server_id, evac.cloud.admin)
        if shown["OS-EXT-STS:task_state"] is None:
            return shown
    raise AssertionError(f"still moving: {shown}")


def test_cold_migrate_then_confirm(evac: Evac) -> None:
    server_id, source, dest = evac.server()
    src_driver, dst_driver = evac.loops[source].driver, evac.loops[dest].driver
    console_before = src_driver.console_log(server_id).decode()
    resp = _migrate(evac, server_id)
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    shown = evac.show(server_id, evac.cloud.admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("RESIZE", "resize_prep")
    row = evac.migration(server_id)
    assert (row.migration_type, row.status) == ("migration", "pre-migrating")
    assert evac.allocations() == {server_id: source, row.uuid: dest}
    evac.check_clean()

    shown = _settle(evac, server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", evac.name(dest))
    assert dst_driver.get_state(server_id).power_state == "running"
    assert src_driver.get_state(server_id).power_state == "shutdown"  # kept until confirm
    assert dst_driver.console_log(server_id).decode().startswith(console_before.rstrip("\n"))
    assert evac.migration(server_id).status == "finished"
    assert evac.allocations() == {server_id: dest, row.uuid: source}
    evac.check_clean()

    resp = evac.action(server_id, evac.cloud.admin, {"confirmResize": None})
    assert resp.status_code in (202, 204), resp.text
    assert evac.allocations() == {server_id: dest}
    shown = _settle(evac, server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", evac.name(dest))
    assert src_driver.get_state(server_id).power_state == "nostate"
    row = evac.migration(server_id)
    assert (row.status, row.source_done, row.dest_done) == ("confirmed", True, True)
    (listed,) = evac.get("/os-migrations?migration_type=migration", "2.23")["migrations"]
    assert listed["status"] == "confirmed"
    evac.check_clean()


def test_cold_migrate_stopped_server_then_revert(evac: Evac) -> None:
    server_id, source, dest = evac.server()
    src_driver, dst_driver = evac.loops[source].driver, evac.loops[dest].driver
    assert evac.action(server_id, evac.cloud.admin, {"os-stop": None}).status_code == 202
    evac.converge()
    assert _migrate(evac, server_id, {}).status_code == 202
    shown = _settle(evac, server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("VERIFY_RESIZE", evac.name(dest))
    assert dst_driver.get_state(server_id).power_state == "shutdown"
    resp = evac.action(server_id, evac.cloud.admin, {"revertResize": None})
    assert resp.status_code == 202, resp.text
    assert evac.show(server_id, evac.cloud.admin)["status"] == "REVERT_RESIZE"
    shown = _settle(evac, server_id)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("SHUTOFF", evac.name(source))
    assert dst_driver.get_state(server_id).power_state == "nostate"
    assert src_driver.get_state(server_id).power_state == "shutdown"
    row = evac.migration(server_id)
    assert (row.status, row.source_done, row.dest_done) == ("reverted", True, True)
    assert evac.allocations() == {server_id: source}
    evac.check_clean()
    # Reverted: it can move again, and start.
    assert evac.action(server_id, evac.cloud.admin, {"os-start": None}).status_code == 202
    assert _settle(evac, server_id)["status"] == "ACTIVE"


def test_cold_migrate_refusals(evac: Evac) -> None:
    cloud = evac.cloud
    project = cloud.project("cm-p")
    _, token = cloud.member("cm-u", project["id"])
    server_id = evac.create(cloud.h(token)).json()["server"]["id"]
    evac.converge()
    with evac.db.session() as session:
        source = session.get(m.Instance, server_id).host_id
    dest = evac.host2 if source == evac.host_id else evac.host_id
    assert _migrate(evac, server_id, headers=cloud.h(token)).status_code == 403
    for body, needle in (({"host": evac.name(dest)}, "host"), ("x", "migrate")):
        resp = _migrate(evac, server_id, body)
        assert resp.status_code == 400, resp.text
        assert needle in resp.json()["badRequest"]["message"]
    assert _migrate(evac, "6a1c8b4e-0000-4000-8000-000000000000").status_code == 404
    evac.force_down(dest)
    resp = _migrate(evac, server_id)
    assert resp.status_code == 400 and "No valid host" in resp.json()["badRequest"]["message"]
    _nothing_changed(evac, server_id, source)
    evac.force_down(dest, False)
    assert evac.action(server_id, cloud.admin, {"pause": None}).status_code == 202
    evac.converge()
    resp = _migrate(evac, server_id)
    assert resp.status_code == 409 and "conflictingRequest" in resp.json()
    _nothing_changed(evac, server_id, source)
    assert evac.action(server_id, cloud.admin, {"unpause": None}).status_code == 202
    evac.converge()
    assert _migrate(evac, server_id).status_code == 202
    assert _migrate(evac, server_id).status_code == 409  # already moving
    resp = evac.action(server_id, cloud.admin, {"confirmResize": None})
    assert resp.status_code == 409  # not VERIFY_RESIZE yet


def test_cold_migrate_stuck_before_the_switch_leaves_the_server_on_its_host(
    evac: Evac,
) -> None:
    server_id, source, dest = evac.server()
    assert _migrate(evac, server_id).status_code == 202
    evac.loops[source].sync_once()  # the source serves the disk; the destination is dead
    assert evac.migration(server_id).status == "migrating"
    with evac.db.session() as session:
        instance = session.get(m.Instance, server_id)
        instance.task_deadline = instance.task_deadline.replace(year=2000)
    assert resolve_all(evac.db) == 1
    row = evac.migration(server_id)
    assert row.status == "error"
    assert evac.allocations() == {server_id: source}
    shown = _settle(evac, server_id)
    assert shown["OS-EXT-SRV-ATTR:host"] == evac.name(source)
    assert evac.loops[dest].driver.get_state(server_id).power_state == "nostate"
    row = evac.migration(server_id)
    assert (row.source_done, row.dest_done) == (True, True)
    evac.check_clean()


# --- kumo host evacuate ---------------------------------------------------------------------


def test_cli_host_evacuate_moves_every_server_of_the_host(
    evac: Evac, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading

    from typer.testing import CliRunner

    from kumo.cli.main import app

    first, source, dest = evac.server()
    # A second server there, paused: refused (409), reported, and the exit code says so.
    evac.force_down(dest)
    second = evac.create(evac.cloud.admin).json()["server"]["id"]
    evac.converge()
    evac.force_down(dest, False)
    with evac.db.session() as session:
        assert session.get(m.Instance, second).host_id == source
    assert evac.action(second, evac.cloud.admin, {"pause": None}).status_code == 202
    evac.converge()
    evac.force_down(source)
    monkeypatch.setenv("KUMO_DATABASE_URL", evac.db.url)
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path / "cli"))
    stop = threading.Event()

    def dest_agent() -> None:  # the destination's agent works while the CLI waits
        while not stop.wait(0.2):
            evac.loops[dest].sync_once()

    worker = threading.Thread(target=dest_agent)
    worker.start()
    try:
        result = CliRunner().invoke(
            app, ["host", "evacuate", evac.name(source), "--format", "json", "--timeout", "60"]
        )
    finally:
        stop.set()
        worker.join()
    assert result.exit_code == 1, result.output
    rows = {r["server"]: r for r in json.loads(result.stdout)}
    assert rows[first]["result"] == "rebuilt" and rows[first]["destination"] == evac.name(dest)
    assert rows[second]["result"] == "refused" and "paused" in rows[second]["detail"]
    shown = evac.show(first, evac.cloud.admin)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", evac.name(dest))


def test_cli_host_evacuate_wakes_the_destination_agent_and_records_the_action(
    evac: Evac, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI runs the evacuate operation through the lifecycle, as the API does: the
    destination's agent is woken after the commit (not left to its next poll), and the
    evacuation is an instance action of the server."""
    from typer.testing import CliRunner

    from kumo.cli.main import app
    from kumo.core import wakeup

    server_id, source, dest = evac.server()
    evac.force_down(source)
    monkeypatch.setenv("KUMO_DATABASE_URL", evac.db.url)
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path / "cli"))
    topic = wakeup.host_topic(dest)
    before = wakeup.mark(topic)
    result = CliRunner().invoke(
        app, ["host", "evacuate", evac.name(source), "--no-wait", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert wakeup.mark(topic) != before
    with evac.db.session() as session:
        assert session.get(m.Instance, server_id).host_id == dest
        recorded = session.scalars(
            select(m.InstanceAction.action).where(m.InstanceAction.instance_id == server_id)
        ).all()
    assert "evacuate" in recorded
    # Its events are Nova's, and end when the destination has rebuilt the server.
    evac.only(dest)
    with evac.db.session() as session:
        events = session.scalars(
            select(InstanceActionEvent)
            .join(m.InstanceAction, m.InstanceAction.id == InstanceActionEvent.action_id)
            .where(m.InstanceAction.instance_id == server_id, m.InstanceAction.action == "evacuate")
        ).all()
        assert sorted((e.event, e.result) for e in events) == [
            ("compute_rebuild_instance", "Success"),
            ("rebuild_server", "Success"),
        ]


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)
def test_cli_host_evacuate_wakes_an_agent_polling_another_process(
    evac: Evac, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI is a process of its own: its wake-up reaches the process whose agents
    long-poll (a relay here stands for it) through the database, even with --no-wait,
    when the CLI exits at once."""
    import threading
    from collections.abc import Sequence

    from typer.testing import CliRunner

    from kumo.cli.main import app
    from kumo.core import wakeup
    from kumo.db.notify_relay import NotifyRelay
    from kumo.db.table_relay import TableRelay
    from kumo.db.wakeup_relay import WakeupRelay

    _, source, dest = evac.server()
    evac.force_down(source)
    monkeypatch.setenv("KUMO_DATABASE_URL", evac.db.url)
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path / "cli"))
    woken = threading.Event()
    topic = wakeup.host_topic(dest)

    def deliver(topics: Sequence[str]) -> None:
        if topic in topics:
            woken.set()

    # The serving process's relay, as kumo.runtime.wakeups_across_processes makes it.
    serving: WakeupRelay = (
        NotifyRelay(evac.db.url, deliver)
        if evac.db.backend == "postgresql"
        else TableRelay(evac.db.engine, deliver)
    ).start()
    try:
        assert serving.wait_listening(15.0)
        result = CliRunner().invoke(
            app, ["host", "evacuate", evac.name(source), "--no-wait", "--format", "json"]
        )
        assert result.exit_code == 0, result.output
        assert woken.wait(15.0), "the CLI's wake-up never reached the serving process"
    finally:
        serving.stop()


def test_no_move_lands_on_a_host_that_cannot_carry_the_servers_network(evac: Evac) -> None:
    """Every move chooses its host through the scheduler's filters, the network types
    included: a host whose agent cannot carry the server's network (here: no 802.1Q) is
    refused by cold and live migration (named or not) and by evacuation, with the reason,
    and nothing is written."""
    admin = evac.cloud.admin
    vlan = {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}
    net = netapi.network(evac.cloud, admin, **vlan)
    netapi.subnet(evac.cloud, admin, net["id"], "10.63.0.0/24")
    carries = {"fake-1": ["flat", "local", "vlan", "vxlan"], "fake-2": ["flat", "local", "vxlan"]}
    for host_id, loop in evac.loops.items():
        name = evac.name(host_id)
        capabilities = {
            "hypervisor": loop.driver.capabilities(),
            "network": {
                "network_types": carries[name],
                "reasons": {} if "vlan" in carries[name] else {"vlan": "no 802.1Q here"},
            },
        }
        body = {"host": {"id": host_id, "name": name, "agent_api_versions": ["v1"],
                         "capabilities": capabilities,
                         "inventory": {"vcpus": 8, "memory_mb": 8704, "disk_gb": 100}}}  # fmt: skip
        assert evac.agent_client.post("/agent/v1/hosts", json=body).status_code == 200
    resp = evac.create(admin, networks=[{"uuid": net["id"]}])
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    evac.converge()
    source = evac.host_id  # the only host that carries vlan
    assert evac.show(server_id, admin)["OS-EXT-SRV-ATTR:host"] == "fake-1"
    refusal = "fake-2: cannot carry vlan networks (no 802.1Q here)"

    moves = [
        _migrate(evac, server_id),
        evac.live(server_id, AUTO),
        evac.live(server_id, {"host": "fake-2", "block_migration": "auto"}),
    ]
    evac.force_down(source)
    moves += [evac.evacuate(server_id, {}), evac.evacuate(server_id, {"host": "fake-2"})]
    for resp in moves:
        assert resp.status_code == 400, resp.text
        message = resp.json()["badRequest"]["message"]
        assert message.startswith("No valid host was found.") and refusal in message, message
    evac.force_down(source, False)
    _nothing_changed(evac, server_id, source)

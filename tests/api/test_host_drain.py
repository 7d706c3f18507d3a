"""`kumo host drain` between two fake hosts, each with its agent loop (the agents work in a
thread while the command runs in this process, as `kumo host drain` runs beside a cloud):
every server of the drained host moves (live, at most --parallel at once, to the host
placement chooses), the host ends disabled and empty; a server that cannot move is
reported with the reason while the others still move; --cold moves the shut-off ones;
`kumo host evacuate` shows its progress the same way."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from test_evacuate_migrate import Evac
from test_live_migration import v
from typer.testing import CliRunner

from kumo.agent.compute import ComputeLoop
from kumo.cli.main import app
from kumo.core import hosts
from kumo.core.checks import run_checks
from kumo.core.compute.host_moves import DRAIN_REASON
from kumo.core.compute.migrations import IN_PROGRESS
from kumo.db import models as m
from kumo.drivers.hypervisor.base import HypervisorError


def passes(loop: ComputeLoop) -> None:
    """One agent pass that, as the agent's own loop, goes on after a report the API
    refused (a 409 when it raced the drain's write to the same server: the next pass
    reports again)."""
    try:
        loop.sync_once()
    except httpx.HTTPStatusError as exc:
        assert exc.response.status_code == 409, exc.response.text


class Drain(Evac):
    def place_on_first(self, count: int, **extra: Any) -> list[str]:
        """``count`` ACTIVE servers, all on fake-1 (fake-2 disabled meanwhile)."""
        self.set_enabled(self.host2, False)
        ids = [
            self.create(self.cloud.admin, name=f"vm-{i}", **extra).json()["server"]["id"]
            for i in range(count)
        ]
        self.converge()
        self.set_enabled(self.host2, True)
        with self.db.session() as session:
            assert all(session.get(m.Instance, sid).host_id == self.host_id for sid in ids)
        return ids

    def set_enabled(self, host_id: str, enabled: bool) -> None:
        with self.db.session() as session:
            hosts.set_enabled(session, host_id, enabled, None if enabled else "test")

    def on_host(self, host_id: str) -> list[str]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(m.Instance.id).where(
                        m.Instance.host_id == host_id, m.Instance.deleted.is_(False)
                    )
                )
            )

    def host_row(self, host_id: str) -> tuple[bool, str | None]:
        with self.db.session() as session:
            row = session.get(m.Host, host_id)
            return row.enabled, row.disabled_reason

    @contextmanager
    def agents_working(self) -> Iterator[dict[str, int]]:
        """Both agents' passes in a thread, as their loops would run, while the command
        waits; ``seen["in_flight"]`` is the most live/cold migrations under way at once."""
        stop = threading.Event()
        seen = {"in_flight": 0}

        def work() -> None:
            while not stop.wait(0.05):
                for loop in self.loops.values():
                    passes(loop)
                with self.db.session() as session:
                    now = session.scalar(
                        select(func.count())
                        .select_from(m.Migration)
                        .where(m.Migration.status.in_((*IN_PROGRESS, "pre-migrating", "migrating")))
                    )
                seen["in_flight"] = max(seen["in_flight"], int(now or 0))

        worker = threading.Thread(target=work)
        worker.start()
        try:
            yield seen
        finally:
            stop.set()
            worker.join()

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(app, [*args, "--format", "json"])


@pytest.fixture
def drain(cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Drain:
    pair = Drain(cloud, tmp_path)
    monkeypatch.setenv("KUMO_DATABASE_URL", pair.db.url)
    monkeypatch.setenv("KUMO_STATE_DIR", str(tmp_path / "cli"))
    return pair


def _rows(result: Any) -> dict[str, dict[str, Any]]:
    return {row["server"]: row for row in json.loads(result.stdout)}


def test_drain_moves_ten_servers_live_and_leaves_the_host_disabled_and_empty(
    drain: Drain,
) -> None:
    ids = drain.place_on_first(10)
    with drain.agents_working() as seen:
        result = drain.cli("host", "drain", "fake-1", "--parallel", "3", "--timeout", "120")
    assert result.exit_code == 0, result.output
    rows = _rows(result)
    assert set(rows) == set(ids)
    for row in rows.values():
        assert (row["result"], row["method"], row["destination"]) == ("moved", "live", "fake-2")
        assert row["detail"] == ""
    assert 1 <= seen["in_flight"] <= 3  # the parallel limit held
    # Progress: a line per server as it ended, on stderr.
    assert "[10/10] moved" in result.stderr, result.stderr
    for sid in ids:
        assert sid in result.stderr
    # The host is disabled (the drain's reason) and empty; the guests run on fake-2 only.
    assert drain.host_row(drain.host_id) == (False, DRAIN_REASON)
    assert drain.on_host(drain.host_id) == []
    assert sorted(drain.on_host(drain.host2)) == sorted(ids)
    assert set(drain.allocations().values()) == {drain.host2}
    for sid in ids:
        assert drain.loops[drain.host_id].driver.get_state(sid).power_state == "nostate"
        assert drain.loops[drain.host2].driver.get_state(sid).power_state == "running"
        shown = drain.show(sid, drain.cloud.admin)
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "fake-2")
    drain.check_clean()
    # Maintenance done: enabled again, new servers may land there.
    enabled = CliRunner().invoke(app, ["host", "enable", "fake-1"])
    assert enabled.exit_code == 0, enabled.output
    assert drain.host_row(drain.host_id) == (True, None)


def test_a_server_that_cannot_move_is_reported_and_the_rest_still_move(drain: Drain) -> None:
    """Three that cannot move: one shut off (not live without --cold), one in ERROR (no
    move starts from there), one too big for the only other host (placement's reason);
    the two others move. Then --cold moves the shut-off one, which stays SHUTOFF."""
    movers = drain.place_on_first(2)
    stopped, broken = drain.place_on_first(2)
    (big,) = drain.place_on_first(1, flavorRef="3")  # m1.medium: 4096 MiB
    assert drain.action(stopped, drain.cloud.admin, {"os-stop": None}).status_code == 202
    drain.converge()
    with drain.db.session() as session:
        session.get(m.Instance, broken).vm_state = "error"
    # fake-2 now reports 2 GiB of RAM (3 GiB after the allocation ratio): no room for big.
    body = drain.registration_body(drain.host2, "fake-2", 8, 2048)
    body["host"]["capabilities"] = {"hypervisor": drain.loop2.driver.capabilities()}
    assert drain.agent_client.post("/agent/v1/hosts", json=body).status_code == 200

    with drain.agents_working():
        result = drain.cli("host", "drain", "fake-1", "--reason", "new RAM", "--timeout", "120")
    assert result.exit_code == 1, result.output
    rows = _rows(result)
    for sid in movers:
        assert (rows[sid]["result"], rows[sid]["destination"]) == ("moved", "fake-2")
    assert rows[stopped]["result"] == "refused"
    assert rows[stopped]["detail"] == (
        "it is SHUTOFF: only ACTIVE or PAUSED servers move live; --cold moves it shut off"
    )
    assert rows[broken]["result"] == "refused"
    assert rows[broken]["detail"] == (
        "it is ERROR: only ACTIVE or PAUSED servers move live, ACTIVE or SHUTOFF ones cold"
    )
    assert rows[big]["result"] == "refused"
    assert "No valid host was found" in rows[big]["detail"]
    assert "fake-2" in rows[big]["detail"] and "RAM" in rows[big]["detail"]
    assert "refused" in result.stderr and big in result.stderr
    assert drain.host_row(drain.host_id) == (False, "new RAM")
    assert sorted(drain.on_host(drain.host_id)) == sorted([stopped, broken, big])
    drain.check_clean()

    # Again with --cold: the shut-off one moves cold (and is confirmed: its copy on
    # fake-1 goes); the ERROR one is refused by the cold migration's own state check.
    with drain.agents_working():
        result = drain.cli("host", "drain", "fake-1", "--cold", "--timeout", "120")
    assert result.exit_code == 1, result.output
    rows = _rows(result)
    assert set(rows) == {stopped, broken, big}
    cold = rows[stopped]
    assert (cold["result"], cold["method"]) == ("moved", "cold"), cold["detail"]
    assert rows[broken]["result"] == "refused"
    assert "while it is in vm_state error" in rows[broken]["detail"]
    shown = drain.show(stopped, drain.cloud.admin)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("SHUTOFF", "fake-2")
    assert drain.loops[drain.host_id].driver.get_state(stopped).power_state == "nostate"
    assert drain.migration(stopped).status == "confirmed"
    drain.check_clean()


def test_a_failed_live_migration_is_reported_and_cold_takes_over_with_cold(
    drain: Drain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The destination cannot take one guest live (its prepare fails, as a QEMU that
    cannot listen would): without --cold that server is reported with the migration's
    message and stays, the other moves; with --cold it moves cold instead."""
    unlucky, other = drain.place_on_first(2)
    dest_driver = drain.loop2.driver
    prepare = dest_driver.prepare_incoming

    def refuse_one(spec: Any, block: bool) -> dict[str, Any]:
        if spec.uuid == unlucky:
            raise HypervisorError("no port to listen on")
        return prepare(spec, block)

    monkeypatch.setattr(dest_driver, "prepare_incoming", refuse_one)
    with drain.agents_working():
        result = drain.cli("host", "drain", "fake-1", "--timeout", "120")
    assert result.exit_code == 1, result.output
    rows = _rows(result)
    assert (rows[other]["result"], rows[other]["method"]) == ("moved", "live")
    assert (rows[unlucky]["result"], rows[unlucky]["method"]) == ("failed", "live")
    assert rows[unlucky]["detail"] == (
        "live migration failed: the destination could not prepare: no port to listen on"
    )
    assert drain.on_host(drain.host_id) == [unlucky]
    assert drain.show(unlucky, drain.cloud.admin)["status"] == "ACTIVE"

    with drain.agents_working():
        result = drain.cli("host", "drain", "fake-1", "--cold", "--timeout", "120")
    assert result.exit_code == 0, result.output
    (row,) = _rows(result).values()
    assert (row["result"], row["method"], row["destination"]) == ("moved", "cold", "fake-2")
    assert row["detail"].startswith("live migration failed: the destination could not")
    shown = drain.show(unlucky, drain.cloud.admin)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "fake-2")
    assert drain.on_host(drain.host_id) == []
    drain.check_clean()


def test_a_host_that_cannot_live_migrate_is_drained_cold(drain: Drain) -> None:
    """fake-1's hypervisor says it cannot live-migrate (an agent from before live
    migration, say): without --cold every server is reported with that reason; with it,
    every one moves cold, running ones come back ACTIVE."""
    ids = drain.place_on_first(2)
    capabilities = {
        k: v for k, v in drain.loop.driver.capabilities().items() if k != "live_migration"
    }
    body = drain.registration_body(drain.host_id, "fake-1", 8, 8704)
    body["host"]["capabilities"] = {"hypervisor": capabilities}
    assert drain.agent_client.post("/agent/v1/hosts", json=body).status_code == 200
    with drain.agents_working():
        result = drain.cli("host", "drain", "fake-1", "--timeout", "120")
    assert result.exit_code == 1, result.output
    for row in _rows(result).values():
        assert row["result"] == "refused"
        assert row["detail"] == (
            "the hypervisor of fake-1 cannot live-migrate; --cold moves it shut off"
        )
    with drain.agents_working():
        result = drain.cli("host", "drain", "fake-1", "--cold", "--timeout", "120")
    assert result.exit_code == 0, result.output
    for row in _rows(result).values():
        assert (row["result"], row["method"], row["destination"]) == ("moved", "cold", "fake-2")
    for sid in ids:
        shown = drain.show(sid, drain.cloud.admin)
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "fake-2")
    assert drain.on_host(drain.host_id) == []
    drain.check_clean()


def test_drain_refuses_a_host_that_is_down_or_unknown(drain: Drain) -> None:
    drain.place_on_first(1)
    resp = drain.client.put(
        "/compute/v2.1/os-services/force-down",
        json={"host": "fake-1", "binary": "nova-compute", "forced_down": True},
        headers={**drain.cloud.admin, **v("2.11")},
    )
    assert resp.status_code == 200, resp.text
    result = drain.cli("host", "drain", "fake-1")
    assert result.exit_code == 2
    assert "kumo host evacuate fake-1" in result.stderr
    assert drain.host_row(drain.host_id) == (True, None)  # nothing changed
    result = drain.cli("host", "drain", "nowhere")
    assert result.exit_code == 2 and "No host with id or name" in result.stderr
    result = drain.cli("host", "drain", "fake-2", "--parallel", "0")
    assert result.exit_code == 2 and "--parallel" in result.stderr


def test_draining_an_empty_host_disables_it(drain: Drain) -> None:
    result = drain.cli("host", "drain", "fake-2")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert drain.host_row(drain.host2) == (False, DRAIN_REASON)


def test_evacuate_shows_progress_as_drain_does(drain: Drain) -> None:
    ids = drain.place_on_first(2)
    drain.force_down(drain.host_id)
    stop = threading.Event()

    def dest_agent() -> None:  # the source is dead: only the destination works
        while not stop.wait(0.05):
            passes(drain.loop2)

    worker = threading.Thread(target=dest_agent)
    worker.start()
    try:
        result = drain.cli("host", "evacuate", "fake-1", "--timeout", "120")
    finally:
        stop.set()
        worker.join()
    assert result.exit_code == 0, result.output
    rows = _rows(result)
    assert {(r["result"], r["method"], r["destination"]) for r in rows.values()} == {
        ("rebuilt", "evacuate", "fake-2")
    }
    assert "[2/2] rebuilt" in result.stderr, result.stderr
    assert sorted(drain.on_host(drain.host2)) == sorted(ids)
    with drain.db.session() as session:
        assert run_checks(session) == []

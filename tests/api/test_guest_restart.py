"""Guest restart (issue 16) with the fake hypervisor: a guest killed behind the cloud's
back is started again by its agent when the controller asks, with a ``restart`` instance
action saying why; a back-off between restarts; the fifth exit within a minute is ERROR
with a fault; a server or flavor opts out with ``kumo:guest_restart``; a guest that
powered itself off, one the user stopped, and guests found running by a restarted agent
are never restarted.

Time is moved by ageing the recorded exits (their actions' start), never by sleeping."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_servers import SERVERS, Compute

from kumo.agent.compute import ComputeLoop
from kumo.agent.guest_watch import GuestWatch
from kumo.controller.restarts import restart_crashed
from kumo.core.compute import guest_restart
from kumo.db import models as m
from kumo.db.action_events import InstanceActionEvent
from kumo.drivers.hypervisor.fake import FakeDriver

BOOT_LINE = "kumo-guest: start"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _driver(compute: Compute) -> FakeDriver:
    driver = compute.loop.driver
    assert isinstance(driver, FakeDriver)
    return driver


def _active_server(compute: Compute, **extra: Any) -> str:
    resp = compute.create(compute.cloud.admin, **extra)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, compute.cloud.admin)["status"] == "ACTIVE"
    return server_id


def _kill(compute: Compute, server_id: str) -> None:
    """kill -9 of the guest's process, then the agent's next look reports it."""
    _driver(compute).simulate_exit(server_id, "killed")
    compute.loop.sync_once()


def _actions(compute: Compute, server_id: str, name: str) -> list[m.InstanceAction]:
    with compute.db.session() as session:
        rows = session.scalars(
            select(m.InstanceAction)
            .where(m.InstanceAction.instance_id == server_id, m.InstanceAction.action == name)
            .order_by(m.InstanceAction.id)
        )
        return list(rows)


def _events(compute: Compute, action_id: int) -> list[InstanceActionEvent]:
    with compute.db.session() as session:
        rows = session.scalars(
            select(InstanceActionEvent).where(InstanceActionEvent.action_id == action_id)
        )
        return list(rows)


def _age_exits(compute: Compute, server_id: str, seconds: float) -> None:
    """As if ``seconds`` had passed since every recorded exit of the server."""
    with compute.db.session() as session:
        for row in session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == server_id,
                m.InstanceAction.action == guest_restart.ACTION,
            )
        ):
            row.start_time = row.start_time - dt.timedelta(seconds=seconds)


def _boots(compute: Compute, server_id: str) -> int:
    return _driver(compute).console_log(server_id).decode().count(BOOT_LINE)


def _restart_once(compute: Compute, server_id: str) -> None:
    """Kill the guest, let the controller and the agent restart it."""
    _kill(compute, server_id)
    assert restart_crashed(compute.db) == 1
    compute.loop.sync_once()
    assert _driver(compute).get_state(server_id).power_state == "running"


def test_killed_guest_is_restarted_with_an_action_saying_why(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute)
    _kill(compute, server_id)
    shown = compute.show(server_id, admin)
    # Killed, not yet restarted: ACTIVE with power state Crashed, as Nova shows it.
    assert (shown["status"], shown["OS-EXT-STS:power_state"]) == ("ACTIVE", 6), shown
    assert restart_crashed(compute.db) == 1
    shown = compute.show(server_id, admin)
    assert shown["OS-EXT-STS:task_state"] == "powering-on", shown
    compute.loop.sync_once()
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:power_state"]) == ("ACTIVE", 1), shown
    assert shown["OS-EXT-STS:task_state"] is None
    assert _boots(compute, server_id) == 2  # a second boot on the same console
    assert restart_crashed(compute.db) == 0  # running again: nothing more to do

    listed = compute.client.get(f"{SERVERS}/{server_id}/os-instance-actions", headers=admin)
    actions = listed.json()["instanceActions"]
    restart = next(a for a in actions if a["action"] == "restart")
    assert "exited without being asked to" in restart["message"], restart
    assert "killed (simulated)" in restart["message"], restart
    shown_action = compute.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions/{restart['request_id']}",
        headers=admin,
    ).json()["instanceAction"]
    events = shown_action["events"]
    assert [(e["event"], e["result"]) for e in events] == [
        ("compute_restart_instance", "Success")
    ], events


def test_back_off_then_error_after_five_exits_in_a_minute(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute)
    _restart_once(compute, server_id)  # the first exit: at once
    for exit_number, wait in ((2, 1.0), (3, 2.0), (4, 4.0)):
        _kill(compute, server_id)
        # Backing off: not yet, however often the controller looks.
        assert restart_crashed(compute.db) == 0, f"exit {exit_number} restarted at once"
        assert compute.show(server_id, admin)["OS-EXT-STS:power_state"] == 6
        _age_exits(compute, server_id, wait + 0.5)
        assert restart_crashed(compute.db) == 1, f"exit {exit_number} not restarted"
        compute.loop.sync_once()
        assert compute.show(server_id, admin)["OS-EXT-STS:power_state"] == 1
    assert _boots(compute, server_id) == 5

    _kill(compute, server_id)  # the fifth exit within the minute: no restart storm
    assert restart_crashed(compute.db) == 1
    compute.loop.sync_once()
    shown = compute.show(server_id, admin)
    assert shown["status"] == "ERROR", shown
    assert "5 times within 60 s" in shown["fault"]["message"], shown["fault"]
    assert _driver(compute).get_state(server_id).power_state == "crashed"
    assert restart_crashed(compute.db) == 0
    last = _actions(compute, server_id, "restart")[-1]
    assert last.finish_time is not None and last.message.startswith("Error: "), last.message
    assert [e.result for e in _events(compute, last.id)] == ["Error"]
    assert len(_actions(compute, server_id, "restart")) == 5

    # The owner takes it from there: stop, then start, as after any ERROR.
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    compute.loop.sync_once()
    assert compute.action(server_id, admin, {"os-start": None}).status_code == 202
    compute.loop.sync_once()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"


def test_exits_older_than_the_window_do_not_count(compute: Compute) -> None:
    server_id = _active_server(compute)
    for _ in range(4):
        _restart_once(compute, server_id)
        _age_exits(compute, server_id, 61)
    _restart_once(compute, server_id)  # the fifth exit, but alone in its minute: at once
    assert compute.show(server_id, compute.cloud.admin)["status"] == "ACTIVE"


def test_an_exit_during_the_restart_counts_again(compute: Compute) -> None:
    """The restarted QEMU died before the agent saw it running: that restart failed
    (its action says so) and the exit is one more, restarted in turn."""
    server_id = _active_server(compute)
    _kill(compute, server_id)
    assert restart_crashed(compute.db) == 1
    with compute.db.session() as session:
        generation = session.get(m.Instance, server_id).generation
    resp = compute.agent_client.post(
        f"/agent/v1/hosts/{compute.host_id}/instances/{server_id}/observation",
        json={"power_state": "crashed", "generation": generation, "detail": "died at once"},
    )
    assert resp.status_code == 204, resp.text
    first, second = _actions(compute, server_id, "restart")
    assert first.message.startswith("Error: the guest exited again (died at once)")
    assert second.finish_time is None and "died at once" in second.message
    shown = compute.show(server_id, compute.cloud.admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None), shown
    _age_exits(compute, server_id, 2)
    assert restart_crashed(compute.db) == 1
    compute.loop.sync_once()
    assert compute.show(server_id, compute.cloud.admin)["OS-EXT-STS:power_state"] == 1


@pytest.mark.parametrize("where", ["metadata", "flavor"])
def test_opt_out_leaves_a_killed_guest_shutoff(compute: Compute, where: str) -> None:
    admin = compute.cloud.admin
    if where == "flavor":
        resp = compute.client.post(
            "/compute/v2.1/flavors/1/os-extra_specs",
            json={"extra_specs": {"kumo:guest_restart": "false"}},
            headers=admin,
        )
        assert resp.status_code == 200, resp.text
        server_id = _active_server(compute)
    else:
        server_id = _active_server(compute, metadata={"kumo:guest_restart": "off"})
    _kill(compute, server_id)
    shown = compute.show(server_id, admin)
    assert shown["status"] == "SHUTOFF", shown
    assert restart_crashed(compute.db) == 0
    compute.loop.sync_once()
    assert _driver(compute).get_state(server_id).power_state == "crashed"
    assert _actions(compute, server_id, "restart") == []
    (stop,) = _actions(compute, server_id, "stop")
    assert stop.finish_time is not None
    assert "exited without being asked to" in stop.message
    kind = "server metadata" if where == "metadata" else "flavor extra spec"
    assert f"not restarted ({kind} kumo:guest_restart=" in stop.message, stop.message


def test_metadata_turns_restart_back_on_over_the_flavor(compute: Compute) -> None:
    admin = compute.cloud.admin
    compute.client.post(
        "/compute/v2.1/flavors/1/os-extra_specs",
        json={"extra_specs": {"kumo:guest_restart": "false"}},
        headers=admin,
    )
    server_id = _active_server(compute, metadata={"kumo:guest_restart": "true"})
    _restart_once(compute, server_id)


def test_guest_poweroff_stays_shutoff(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute)
    _driver(compute).simulate_exit(server_id, "poweroff")
    compute.loop.sync_once()
    assert compute.show(server_id, admin)["status"] == "SHUTOFF"
    assert restart_crashed(compute.db) == 0
    compute.loop.sync_once()
    assert _driver(compute).get_state(server_id).power_state == "shutdown"
    assert _actions(compute, server_id, "restart") == []


def test_a_guest_the_user_stopped_during_the_back_off_is_not_restarted(
    compute: Compute,
) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute)
    _restart_once(compute, server_id)
    _kill(compute, server_id)
    assert restart_crashed(compute.db) == 0  # backing off
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    compute.loop.sync_once()
    assert compute.show(server_id, admin)["status"] == "SHUTOFF"
    _age_exits(compute, server_id, 30)
    assert restart_crashed(compute.db) == 0
    compute.loop.sync_once()
    assert _driver(compute).get_state(server_id).power_state == "shutdown"
    assert _boots(compute, server_id) == 2
    waited = _actions(compute, server_id, "restart")[-1]
    assert waited.finish_time is not None
    assert (waited.message or "").endswith("; not restarted: the server was stopped first")


def test_a_restarted_agent_leaves_running_guests_alone(compute: Compute, tmp_path: Path) -> None:
    server_id = _active_server(compute)
    again = ComputeLoop(
        compute.agent_client, "/agent/v1", compute.host_id, FakeDriver(tmp_path / "fake")
    )
    again.sync_once()  # adopts and reports: the same guest, running
    assert restart_crashed(compute.db) == 0
    assert compute.show(server_id, compute.cloud.admin)["OS-EXT-STS:power_state"] == 1
    assert _boots(compute, server_id) == 1
    assert _actions(compute, server_id, "restart") == []


def test_the_watch_reports_a_killed_guest_at_its_next_look(compute: Compute) -> None:
    server_id = _active_server(compute)
    loop = compute.loop
    watch = GuestWatch(loop.driver, loop.running_guests, loop.recheck)
    assert watch.check_once() == []
    assert loop.running_guests() == [server_id]
    _driver(compute).simulate_exit(server_id, "killed")
    assert watch.check_once() == [server_id]  # the report goes through the loop's pool

    def power() -> int:
        with compute.db.session() as session:
            return int(session.get(m.Instance, server_id).power_state)

    # The agent notes what it reported once the API has answered (after the commit the
    # database shows): wait for both.
    deadline = time.monotonic() + 30
    while power() != 6 or loop.running_guests():
        assert time.monotonic() < deadline, "the watch's report never arrived"
        time.sleep(0.02)
    assert len(_actions(compute, server_id, "restart")) == 1


def test_only_the_observed_generation_counts(compute: Compute) -> None:
    """A report of the crash under an older generation (the user asked for something
    since) is the new request's to settle: no restart recorded."""
    admin = compute.cloud.admin
    server_id = _active_server(compute)
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    with compute.db.session() as session:
        old = session.get(m.Instance, server_id).generation - 1
    resp = compute.agent_client.post(
        f"/agent/v1/hosts/{compute.host_id}/instances/{server_id}/observation",
        json={"power_state": "crashed", "generation": old},
    )
    assert resp.status_code == 204, resp.text
    assert _actions(compute, server_id, "restart") == []
    compute.loop.sync_once()
    assert compute.show(server_id, admin)["status"] == "SHUTOFF"

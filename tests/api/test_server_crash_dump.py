"""trigger_crash_dump (compute 2.17): API checks in Nova's shapes, then the agent sends the
guest one NMI through its driver and the instance action records how it went, on every
database backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.db import models as m
from kumo.drivers.hypervisor.base import PowerState
from kumo.drivers.hypervisor.fake import FakeDriver

CRASH = {"trigger_crash_dump": None}


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _at(headers: dict[str, str], version: str = "2.17") -> dict[str, str]:
    return {**headers, "X-OpenStack-Nova-API-Version": version}


def _active(compute: Compute, headers: dict[str, str]) -> str:
    server_id: str = compute.create(headers).json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, headers)["status"] == "ACTIVE"
    return server_id


def _nmis(compute: Compute, server_id: str) -> int:
    driver = compute.loop.driver
    assert isinstance(driver, FakeDriver)
    return driver.nmi_count(server_id)


def _crash_actions(compute: Compute, server_id: str) -> list[dict[str, Any]]:
    resp = compute.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=compute.cloud.admin
    )
    return [a for a in resp.json()["instanceActions"] if a["action"] == "trigger_crash_dump"]


def test_crash_dump_sends_one_nmi_without_a_task(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    resp = compute.action(server_id, _at(admin), CRASH)
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)  # as Nova
    assert _nmis(compute, server_id) == 0  # the agent has not acted yet
    compute.converge()
    assert _nmis(compute, server_id) == 1
    assert "NMI received" in compute.loop.driver.console_log(server_id).decode()
    compute.converge()  # reported: never sent twice
    assert _nmis(compute, server_id) == 1
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:power_state"]) == ("ACTIVE", 1)
    (action,) = _crash_actions(compute, server_id)
    assert action["message"] is None
    with compute.db.session() as session:
        row = session.get(m.Instance, server_id)
        assert row.observed_generation == row.generation
    # A paused server takes one too.
    assert compute.action(server_id, admin, {"pause": None}).status_code == 202
    compute.converge()
    assert compute.action(server_id, _at(admin), CRASH).status_code == 202
    compute.converge()
    assert _nmis(compute, server_id) == 2
    assert compute.show(server_id, admin)["status"] == "PAUSED"


def test_crash_dump_needs_2_17(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    resp = compute.action(server_id, _at(admin, "2.16"), CRASH)
    assert resp.status_code == 400, resp.text
    assert "trigger_crash_dump" in resp.json()["badRequest"]["message"]
    compute.converge()
    assert _nmis(compute, server_id) == 0
    assert _crash_actions(compute, server_id) == []


@pytest.mark.parametrize("args", [{}, "now", 1, []])
def test_crash_dump_body_must_be_null(compute: Compute, args: Any) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    resp = compute.action(server_id, _at(admin), {"trigger_crash_dump": args})
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400
    assert _crash_actions(compute, server_id) == []


def test_crash_dump_conflicts(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("cd-p")
    _, token = cloud.member("cd-u", project["id"])
    owner = cloud.h(token)
    server_id = _active(compute, owner)
    # Stopped: not a state that takes an NMI.
    assert compute.action(server_id, owner, {"os-stop": None}).status_code == 202
    compute.converge()
    resp = compute.action(server_id, _at(owner), CRASH)
    assert resp.status_code == 409, resp.text
    assert "vm_state stopped" in resp.json()["conflictingRequest"]["message"]
    assert compute.action(server_id, owner, {"os-start": None}).status_code == 202
    # In flight (task_state powering-on): 409 too.
    resp = compute.action(server_id, _at(owner), CRASH)
    assert resp.status_code == 409, resp.text
    compute.converge()
    # Locked: the owner is refused, an admin is not (Nova's check_instance_lock).
    assert compute.action(server_id, owner, {"lock": None}).status_code == 202
    resp = compute.action(server_id, _at(owner), CRASH)
    assert resp.status_code == 409 and "locked" in resp.json()["conflictingRequest"]["message"]
    assert compute.action(server_id, _at(cloud.admin), CRASH).status_code == 202
    compute.converge()
    assert _nmis(compute, server_id) == 1
    # Someone else's server, or none at all: 404.
    _, other = cloud.member("cd-x", cloud.project("cd-q")["id"])
    assert compute.action(server_id, _at(cloud.h(other)), CRASH).status_code == 404
    missing = "00000000-0000-4000-8000-000000000000"
    assert compute.action(missing, _at(cloud.admin), CRASH).status_code == 404


def test_crash_dump_of_an_error_server_without_a_guest(compute: Compute) -> None:
    """Nova allows ERROR; with no guest to take the NMI the action says why, and the server
    is left as it was (the crash dump never restarts a guest)."""
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    compute.loop.driver.destroy(server_id)
    with compute.db.session() as session:
        session.get(m.Instance, server_id).vm_state = "error"
    assert compute.action(server_id, _at(admin), CRASH).status_code == 202
    compute.converge()
    assert compute.loop.driver.get_state(server_id).power_state == PowerState.NOSTATE
    assert compute.show(server_id, admin)["status"] == "ERROR"
    (action,) = _crash_actions(compute, server_id)
    assert action["message"].startswith("Error: ")


def test_crash_dump_needs_a_host_that_can_send_an_nmi(compute: Compute) -> None:
    """A host whose agent does not report the nmi capability (an older agent, or a driver
    without it) would never act: Nova's 400 for a driver that cannot, and nothing recorded."""
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    with compute.db.session() as session:
        host = session.get(m.Host, compute.host_id)
        host.capabilities = {"hypervisor": {"driver": "fake"}}
    resp = compute.action(server_id, _at(admin), CRASH)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["message"] == "Triggering crash dump is not supported"
    assert _crash_actions(compute, server_id) == []
    compute.converge()
    assert _nmis(compute, server_id) == 0

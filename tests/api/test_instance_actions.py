"""os-instance-actions through the compute API: an action is recorded under the id of the
request that asked for it (the X-Compute-Request-ID the client got back), so the client
can look it up by that id, as tempest's test_get_instance_action does."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.core.compute import instance_actions
from kumo.core.policy import SERVICE
from kumo.db import models as m


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _show(compute: Compute, server_id: str, request_id: str, headers: dict[str, str]) -> Any:
    return compute.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions/{request_id}", headers=headers
    )


def test_each_action_is_found_by_the_id_of_its_request(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("actions-p")
    _, token = cloud.member("actions-u", project["id"])
    owner = cloud.h(token)
    created = compute.create(owner)
    assert created.status_code == 202, created.text
    server_id = created.json()["server"]["id"]
    create_id = created.headers["X-Compute-Request-ID"]
    assert created.headers["X-OpenStack-Request-ID"] == create_id
    compute.converge()
    asked: dict[str, str] = {create_id: "create"}
    for body, name in (
        ({"reboot": {"type": "HARD"}}, "reboot"),
        ({"lock": None}, "lock"),
        ({"unlock": None}, "unlock"),
        ({"os-stop": None}, "stop"),
    ):
        resp = compute.action(server_id, owner, body)
        assert resp.status_code == 202, resp.text
        asked[resp.headers["X-Compute-Request-ID"]] = name
        compute.converge()
    for request_id, name in asked.items():
        resp = _show(compute, server_id, request_id, owner)
        assert resp.status_code == 200, (name, resp.text)
        action = resp.json()["instanceAction"]
        assert (action["action"], action["request_id"]) == (name, request_id)
        assert action["instance_uuid"] == server_id
        assert action["project_id"] == project["id"]
    listed = compute.client.get(f"{SERVERS}/{server_id}/os-instance-actions", headers=owner)
    assert {a["request_id"]: a["action"] for a in listed.json()["instanceActions"]} == asked

    # Deleted, its actions are still there from 2.21, the delete's among them.
    deleted = compute.client.delete(f"{SERVERS}/{server_id}", headers=owner)
    assert deleted.status_code == 204, deleted.text
    compute.converge()
    resp = _show(
        compute,
        server_id,
        deleted.headers["X-Compute-Request-ID"],
        {**owner, "X-OpenStack-Nova-API-Version": "2.21"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["instanceAction"]["action"] == "delete"


def test_unknown_request_id_is_nova_404(compute: Compute) -> None:
    admin = compute.cloud.admin
    first = compute.create(admin)
    server_id = first.json()["server"]["id"]
    other = compute.create(admin)
    compute.converge()
    for request_id in ("999", "req-00000000-0000-0000-0000-000000000000"):
        resp = _show(compute, server_id, request_id, admin)
        assert resp.status_code == 404, resp.text
        assert resp.json()["itemNotFound"]["message"] == f"Action {request_id} not found"
    # Another server's request is not this server's action.
    resp = _show(compute, server_id, other.headers["X-Compute-Request-ID"], admin)
    assert resp.status_code == 404


def test_an_action_outside_a_request_gets_an_id_of_its_own(compute: Compute) -> None:
    """What the cloud does on its own (HA, the controller) has no request: each such
    action gets a fresh req- id, never a shared or empty one."""
    server_id = compute.create(compute.cloud.admin).json()["server"]["id"]
    with compute.db.session() as session:
        one = instance_actions.record_action(session, SERVICE, server_id, "evacuate")
        two = instance_actions.record_action(session, SERVICE, server_id, "evacuate")
        session.flush()
        ids = [one.request_id, two.request_id]
        assert session.get(m.InstanceAction, one.id) is one
    assert all(re.fullmatch(r"req-[0-9a-f-]{36}", i) for i in ids), ids
    assert ids[0] != ids[1]
    resp = _show(compute, server_id, ids[0], compute.cloud.admin)
    assert resp.status_code == 200 and resp.json()["instanceAction"]["action"] == "evacuate"

"""os-services at microversion 2.11: ``forced_down`` in the listing and
``PUT /os-services/force-down``; a forced-down host is down for the scheduler and in every
view until the flag is cleared, on every database backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

from kumo.db import models as m

SERVICES = "/compute/v2.1/os-services"
FORCE_DOWN = f"{SERVICES}/force-down"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _at(compute: Compute, version: str) -> dict[str, str]:
    return {**compute.cloud.admin, "X-OpenStack-Nova-API-Version": version}


def _compute_service(compute: Compute, version: str) -> dict[str, Any]:
    resp = compute.client.get(f"{SERVICES}?binary=nova-compute", headers=_at(compute, version))
    assert resp.status_code == 200, resp.text
    (svc,) = resp.json()["services"]
    return svc  # type: ignore[no-any-return]


def test_forced_down_is_listed_from_2_11(compute: Compute) -> None:
    assert "forced_down" not in _compute_service(compute, "2.10")
    svc = _compute_service(compute, "2.11")
    assert svc["forced_down"] is False and svc["state"] == "up"


def test_force_down_stops_placement_until_cleared(compute: Compute) -> None:
    h = _at(compute, "2.11")
    body = {"host": "fake-1", "binary": "nova-compute", "forced_down": True}
    resp = compute.client.put(FORCE_DOWN, json=body, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"service": body}
    svc = _compute_service(compute, "2.11")
    assert (svc["forced_down"], svc["state"], svc["status"]) == (True, "down", "enabled")
    hv = compute.client.get("/compute/v2.1/os-hypervisors", headers=h).json()["hypervisors"]
    assert hv[0]["state"] == "down"
    # The agent keeps heartbeating: the operator's word wins over the heartbeat.
    assert compute.agent_client.post(f"/agent/v1/hosts/{compute.host_id}/heartbeat").is_success
    assert _compute_service(compute, "2.11")["state"] == "down"
    server_id = compute.create(compute.cloud.admin).json()["server"]["id"]
    compute.converge()
    shown = compute.show(server_id, compute.cloud.admin)
    assert shown["status"] == "ERROR"
    assert "fake-1: forced down" in shown["fault"]["details"]

    body["forced_down"] = "false"  # Nova's string booleans are accepted
    resp = compute.client.put(FORCE_DOWN, json=body, headers=h)
    assert resp.json() == {"service": {**body, "forced_down": False}}
    assert _compute_service(compute, "2.11")["state"] == "up"
    later = compute.create(compute.cloud.admin).json()["server"]["id"]
    compute.converge()
    assert compute.show(later, compute.cloud.admin)["status"] == "ACTIVE"


def test_force_down_does_not_exist_before_2_11(compute: Compute) -> None:
    body = {"host": "fake-1", "binary": "nova-compute"}
    resp = compute.client.put(FORCE_DOWN, json=body, headers=_at(compute, "2.10"))
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == "Unknown action"
    # forced_down is not a known field of the 2.1 body at all.
    resp = compute.client.put(
        f"{SERVICES}/disable", json={**body, "forced_down": True}, headers=_at(compute, "2.10")
    )
    assert resp.status_code == 400, resp.text
    assert "forced_down" in resp.json()["badRequest"]["message"]
    with compute.db.session() as session:
        host = session.get(m.Host, compute.host_id)
        assert (host.enabled, host.forced_down) == (True, False)  # nothing half-written


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"host": "fake-1", "binary": "nova-compute"}, 400, "Missing forced_down field"),
        ({"host": "fake-1", "binary": "nova-compute", "forced_down": "maybe"}, 400, "forced_down"),
        ({"host": "fake-1", "binary": "nova-compute", "forced_down": 1}, 400, "forced_down"),
        ({"binary": "nova-compute", "forced_down": True}, 400, "host"),
        ({"host": "fake-1", "binary": "nova-compute", "forced_down": True, "x": 1}, 400, "'x'"),
        ({"host": "nope", "binary": "nova-compute", "forced_down": True}, 404, "nope"),
        ({"host": "fake-1", "binary": "nova-api", "forced_down": True}, 404, "nova-api"),
    ],
)
def test_bad_force_down(compute: Compute, body: dict[str, Any], status: int, words: str) -> None:
    resp = compute.client.put(FORCE_DOWN, json=body, headers=_at(compute, "2.11"))
    assert resp.status_code == status, resp.text
    (error,) = resp.json().values()
    assert error["code"] == status and words in error["message"]
    with compute.db.session() as session:
        assert session.get(m.Host, compute.host_id).forced_down is False


def test_member_may_not_force_down(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("fd-p")
    _, token = cloud.member("fd-u", project["id"])
    body = {"host": "fake-1", "binary": "nova-compute", "forced_down": True}
    headers = {**cloud.h(token), "X-OpenStack-Nova-API-Version": "2.11"}
    assert compute.client.put(FORCE_DOWN, json=body, headers=headers).status_code == 403

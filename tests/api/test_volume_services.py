"""Cinder's os-services: a cinder-volume service per registered host and volume backend
(``host@backend``), the controller as cinder-scheduler; admin only, on every database."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

from kumo.db import models as m
from kumo.db.types import utcnow

FIELDS = {"binary", "host", "zone", "status", "state", "updated_at", "disabled_reason"}
REPLICATION = {"replication_status", "active_backend_id", "frozen"}


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    compute = Compute(cloud, tmp_path)
    body = compute.registration_body(compute.host_id, "fake-1", 8, 8704)
    body["host"]["capabilities"]["volume_backends"] = {"file": {"total_gb": 50}, "raw": {}}
    assert compute.agent_client.post("/agent/v1/hosts", json=body).status_code == 200
    other = compute.registration_body(str(uuid.uuid4()), "compute-only", 8, 8704)
    assert compute.agent_client.post("/agent/v1/hosts", json=other).status_code == 200
    with cloud.db.session() as session:
        session.add(
            m.Lease(
                name="controller",
                holder="ctl-host:4242",
                expires_at=utcnow() + dt.timedelta(seconds=30),
            )
        )
    return compute


def _url(compute: Compute, query: str = "", project_id: str | None = None) -> str:
    project_id = project_id or compute.cloud.boot.admin_project_id
    return f"/volume/v3/{project_id}/os-services{query}"


def _list(compute: Compute, query: str = "") -> list[dict[str, Any]]:
    resp = compute.client.get(_url(compute, query), headers=compute.cloud.admin)
    assert resp.status_code == 200, resp.text
    services: list[dict[str, Any]] = resp.json()["services"]
    return services


def test_services_are_the_backends_and_the_controller(compute: Compute) -> None:
    services = _list(compute)
    rows = {(s["binary"], s["host"]): s for s in services}
    assert set(rows) == {
        ("cinder-scheduler", "ctl-host"),
        ("cinder-volume", "fake-1@file"),
        ("cinder-volume", "fake-1@raw"),
    }  # the host without volume backends has no cinder-volume service
    volume = rows[("cinder-volume", "fake-1@file")]
    assert set(volume) == FIELDS | REPLICATION
    assert (volume["zone"], volume["status"], volume["state"]) == ("nova", "enabled", "up")
    assert volume["updated_at"] and volume["disabled_reason"] is None
    assert (volume["replication_status"], volume["frozen"]) == ("disabled", False)
    scheduler = rows[("cinder-scheduler", "ctl-host")]
    assert set(scheduler) == FIELDS and scheduler["state"] == "up"

    assert {s["host"] for s in _list(compute, "?binary=cinder-volume")} == {
        "fake-1@file",
        "fake-1@raw",
    }
    assert [s["binary"] for s in _list(compute, "?host=fake-1@raw")] == ["cinder-volume"]
    assert _list(compute, "?binary=cinder-backup") == []


def test_a_disabled_or_silent_host_shows(compute: Compute) -> None:
    with compute.cloud.db.session() as session:
        host = session.get(m.Host, compute.host_id)
        host.enabled, host.disabled_reason = False, "maintenance"
        host.last_heartbeat_at = utcnow() - dt.timedelta(hours=1)
    (service,) = _list(compute, "?host=fake-1@file")
    assert (service["status"], service["state"], service["disabled_reason"]) == (
        "disabled",
        "down",
        "maintenance",
    )


def test_only_admins_list_services(compute: Compute) -> None:
    cloud = compute.cloud
    demo = cloud.boot.demo_project_id
    _, token = cloud.member("vol-reader", demo)
    resp = compute.client.get(_url(compute, project_id=demo), headers=cloud.h(token))
    assert resp.status_code == 403, resp.text
    assert resp.json()["forbidden"]["code"] == 403
    resp = compute.client.get(_url(compute))
    assert resp.status_code == 401, resp.text

"""os-hypervisors/{id}/uptime: the host's `uptime` line from what its agent reports with
each heartbeat (kumo.protocol.HostLoad); admin only, Nova's errors for an unknown id, a
host that is down and an agent too old to report it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

from kumo.agent.inventory import _users, host_load
from kumo.core.compute.hypervisors import numeric_id, uptime_text
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.protocol import HostLoad

HYPERVISORS = "/compute/v2.1/os-hypervisors"
# python-openstackclient's parse of the line (openstack hypervisor show).
OSC = re.compile(r"\s*(.+)\sup\s+(.+),\s+(.+)\susers?,\s+load average:\s(.+)")
LOAD = {"uptime_seconds": 93 * 86400 + 18 * 3600 + 25 * 60, "load_average": [0.2, 0.12, 0.14]}


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _uptime(compute: Compute, ref: object, headers: dict[str, str] | None = None) -> Any:
    return compute.client.get(f"{HYPERVISORS}/{ref}/uptime", headers=headers or compute.cloud.admin)


def _beat(compute: Compute, body: Any) -> Any:
    return compute.agent_client.post(f"/agent/v1/hosts/{compute.host_id}/heartbeat", json=body)


def test_uptime_is_what_the_agent_reported(compute: Compute) -> None:
    hid = numeric_id(compute.host_id)
    # Registered by an agent that reports no load: Nova's answer for a driver without it.
    resp = _uptime(compute, hid)
    assert resp.status_code == 501, resp.text
    assert resp.json()["notImplemented"]["code"] == 501

    assert _beat(compute, {"load": {**LOAD, "users": 3}}).status_code == 200
    resp = _uptime(compute, hid)
    assert resp.status_code == 200, resp.text
    body = resp.json()["hypervisor"]
    assert set(body) == {"id", "hypervisor_hostname", "state", "status", "uptime"}
    assert (body["id"], body["hypervisor_hostname"], body["state"]) == (hid, "fake-1", "up")
    parsed = OSC.match(body["uptime"])
    assert parsed is not None, body["uptime"]
    assert parsed.group(2).startswith("93 days, 18:2"), body["uptime"]
    assert (parsed.group(3).strip(), parsed.group(4)) == ("3", "0.20, 0.12, 0.14")
    # By the host's UUID as well; a heartbeat without a body keeps the last report.
    assert _beat(compute, None).status_code == 200
    assert _uptime(compute, compute.host_id).json()["hypervisor"]["id"] == hid


def test_uptime_errors(compute: Compute) -> None:
    cloud = compute.cloud
    assert _beat(compute, {"load": {**LOAD, "users": 0}}).status_code == 200
    resp = _uptime(compute, 12345)
    assert resp.status_code == 404, resp.text
    assert resp.json()["itemNotFound"]["message"] == "Hypervisor with ID 12345 could not be found."
    _, token = cloud.member("hv-reader", cloud.boot.demo_project_id)
    resp = _uptime(compute, numeric_id(compute.host_id), cloud.h(token))
    assert resp.status_code == 403, resp.text
    # A bad report is refused whole: the last good one stays.
    for bad in ({"uptime_seconds": -1}, {**LOAD, "users": "two"}, [1, 2], {**LOAD, "users": 1.5}):
        resp = _beat(compute, {"load": bad})
        assert resp.status_code == 400 and "load" in resp.text, resp.text
    assert " 0 users" in _uptime(compute, compute.host_id).json()["hypervisor"]["uptime"]
    # A host whose agent went quiet cannot say.
    with cloud.db.session() as session:
        session.get(m.Host, compute.host_id).last_heartbeat_at = utcnow() - dt.timedelta(hours=1)
    resp = _uptime(compute, compute.host_id)
    assert resp.status_code == 400, resp.text
    assert "fake-1 is unavailable" in resp.json()["badRequest"]["message"]


def test_the_line_is_procps_uptime() -> None:
    now = dt.datetime(2026, 12, 7, 17, 37, 14)
    line = uptime_text(HostLoad(2 * 3600 + 33 * 60 + 5, (0.33, 0.36, 0.34), 3), now)
    assert line == " 17:37:14 up  2:33,  3 users,  load average: 0.33, 0.36, 0.34"
    line = uptime_text(HostLoad(86400 + 300, (1.0, 0.5, 0.0), 1), now)
    assert line == " 17:37:14 up 1 day, 5 min,  1 user,  load average: 1.00, 0.50, 0.00"


def test_the_agent_reads_its_host(tmp_path: Path) -> None:
    load = host_load()
    assert load.uptime_seconds > 0 and all(x >= 0 for x in load.load_average)
    assert HostLoad.from_dict(load.to_dict()) == load
    # utmp: 384-byte records, ut_type first; two logged-in users (7) among other records.
    utmp = tmp_path / "utmp"
    records = [7, 8, 7, 2]
    utmp.write_bytes(b"".join(t.to_bytes(2, "little") + bytes(382) for t in records))
    assert _users(utmp) == 2
    assert _users(tmp_path / "missing") == 0

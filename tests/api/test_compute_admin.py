"""Operator and quota APIs of compute: os-hypervisors, os-services, os-availability-zone,
/limits, os-quota-sets and os-simple-tenant-usage, on every database backend."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.core import usage_clock
from kumo.db import models as m

V21 = "/compute/v2.1"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _get(compute: Compute, path: str, headers: dict[str, str], status: int = 200) -> Any:
    resp = compute.client.get(f"{V21}{path}", headers=headers)
    assert resp.status_code == status, resp.text
    return resp.json()


def test_hypervisors_show_usage_from_allocations(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]  # flavor 1 (m1.tiny)
    compute.converge()
    (brief,) = _get(compute, "/os-hypervisors", admin)["hypervisors"]
    assert brief == {
        "id": brief["id"],
        "hypervisor_hostname": "fake-1",
        "state": "up",
        "status": "enabled",
    }
    assert isinstance(brief["id"], int)
    (hv,) = _get(compute, "/os-hypervisors/detail", admin)["hypervisors"]
    flavor = compute.show(server_id, admin)
    assert flavor["status"] == "ACTIVE"
    with compute.db.session() as session:
        alloc = session.get(m.Allocation, server_id)
        need = (alloc.vcpus, alloc.memory_mb, alloc.disk_gb)
    assert (hv["vcpus"], hv["memory_mb"], hv["local_gb"]) == (8, 8704, 100)
    assert (hv["vcpus_used"], hv["memory_mb_used"], hv["local_gb_used"]) == (
        need[0],
        need[1] + 512,
        need[2],
    )  # reserved host memory counts as used
    assert hv["free_ram_mb"] == 8704 - need[1] - 512
    assert (hv["running_vms"], hv["current_workload"]) == (1, 0)
    assert hv["hypervisor_type"] == "fake" and isinstance(hv["hypervisor_version"], int)
    assert isinstance(hv["cpu_info"], str)  # an object only from 2.28
    assert hv["service"] == {"host": "fake-1", "id": brief["id"], "disabled_reason": None}
    shown = _get(compute, f"/os-hypervisors/{brief['id']}", admin)["hypervisor"]
    assert shown == hv
    stats = _get(compute, "/os-hypervisors/statistics", admin)["hypervisor_statistics"]
    assert (stats["count"], stats["running_vms"], stats["vcpus_used"]) == (1, 1, need[0])
    found = _get(compute, "/os-hypervisors/fake/servers", admin)["hypervisors"]
    assert found[0]["servers"] == [{"uuid": server_id, "name": "vm"}]
    assert _get(compute, "/os-hypervisors/fake/search", admin)["hypervisors"] == [brief]
    _get(compute, "/os-hypervisors/nomatch/search", admin, 404)
    _get(compute, "/os-hypervisors/12345", admin, 404)


def test_services_disable_stops_placement(compute: Compute) -> None:
    admin = compute.cloud.admin
    (svc,) = _get(compute, "/os-services", admin)["services"]
    assert {k: svc[k] for k in ("binary", "host", "zone", "status", "state")} == {
        "binary": "nova-compute",
        "host": "fake-1",
        "zone": "nova",
        "status": "enabled",
        "state": "up",
    }
    assert "forced_down" not in svc  # from 2.11
    assert _get(compute, "/os-services?binary=nova-scheduler", admin)["services"] == []
    body = {"host": "fake-1", "binary": "nova-compute", "disabled_reason": "maintenance"}
    resp = compute.client.put(f"{V21}/os-services/disable-log-reason", json=body, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["service"] == {**body, "status": "disabled"}
    (svc,) = _get(compute, "/os-services?host=fake-1", admin)["services"]
    assert (svc["status"], svc["disabled_reason"]) == ("disabled", "maintenance")
    (hv,) = _get(compute, "/os-hypervisors", admin)["hypervisors"]
    assert hv["status"] == "disabled"
    server_id = compute.create(admin).json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "ERROR"
    resp = compute.client.put(
        f"{V21}/os-services/enable",
        json={"host": "fake-1", "binary": "nova-compute"},
        headers=admin,
    )
    assert resp.json()["service"] == {
        "host": "fake-1",
        "binary": "nova-compute",
        "status": "enabled",
    }
    for path, payload, status in (
        ("disable", {"host": "nope", "binary": "nova-compute"}, 404),
        ("disable", {"host": "fake-1", "binary": "nova-api"}, 404),
        ("disable", {"host": "fake-1"}, 400),
        ("disable-log-reason", {"host": "fake-1", "binary": "nova-compute"}, 400),
        ("frobnicate", {"host": "fake-1", "binary": "nova-compute"}, 404),
    ):
        resp = compute.client.put(f"{V21}/os-services/{path}", json=payload, headers=admin)
        assert resp.status_code == status, (path, resp.text)


def test_controller_lease_shows_as_internal_services(compute: Compute) -> None:
    admin = compute.cloud.admin
    with compute.db.session() as session:
        session.add(
            m.Lease(
                name="controller",
                holder="ctl-1:42",
                expires_at=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(minutes=1),
            )
        )
    rows = _get(compute, "/os-services", admin)["services"]
    assert {(s["binary"], s["host"], s["zone"], s["state"]) for s in rows} == {
        ("nova-scheduler", "ctl-1", "internal", "up"),
        ("nova-conductor", "ctl-1", "internal", "up"),
        ("nova-compute", "fake-1", "nova", "up"),
    }
    assert len({s["id"] for s in rows}) == 3
    zones = _get(compute, "/os-availability-zone/detail", admin)["availabilityZoneInfo"]
    by_name = {z["zoneName"]: z for z in zones}
    assert by_name["nova"]["hosts"]["fake-1"]["nova-compute"]["active"] is True
    assert set(by_name["internal"]["hosts"]["ctl-1"]) == {"nova-scheduler", "nova-conductor"}


def test_member_is_refused_operator_apis(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("op-p")
    _, token = cloud.member("op-u", project["id"])
    h = cloud.h(token)
    for path in (
        "/os-hypervisors",
        "/os-hypervisors/detail",
        "/os-hypervisors/statistics",
        "/os-services",
        "/os-availability-zone/detail",
        "/os-simple-tenant-usage",
    ):
        assert "forbidden" in _get(compute, path, h, 403), path
    resp = compute.client.put(
        f"{V21}/os-services/disable", json={"host": "fake-1", "binary": "nova-compute"}, headers=h
    )
    assert resp.status_code == 403
    zones = _get(compute, "/os-availability-zone", h)["availabilityZoneInfo"]
    assert zones == [{"zoneName": "nova", "zoneState": {"available": True}, "hosts": None}]


def test_limits_follow_quota_and_usage(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("lim-p")
    _, token = cloud.member("lim-u", project["id"])
    compute.create(cloud.h(token))
    compute.client.post(
        f"{V21}/os-server-groups",
        headers=cloud.h(token),
        json={"server_group": {"name": "g", "policies": ["affinity"]}},
    )
    limits = _get(compute, "/limits", cloud.h(token))["limits"]
    assert limits["rate"] == []
    absolute = limits["absolute"]
    assert (absolute["maxTotalInstances"], absolute["totalInstancesUsed"]) == (10, 1)
    assert (absolute["maxTotalCores"], absolute["totalCoresUsed"]) == (20, 1)
    assert absolute["totalRAMUsed"] == 128 and absolute["maxTotalRAMSize"] == 51200
    assert (absolute["maxServerGroups"], absolute["totalServerGroupsUsed"]) == (10, 1)
    for key in (
        "maxServerMeta",
        "maxImageMeta",
        "maxPersonality",
        "maxPersonalitySize",
        "maxSecurityGroups",
        "maxSecurityGroupRules",
        "maxTotalFloatingIps",
        "totalFloatingIpsUsed",
        "totalSecurityGroupsUsed",
        "maxTotalKeypairs",
        "maxServerGroupMembers",
    ):
        assert isinstance(absolute[key], int), key
    other = _get(compute, f"/limits?tenant_id={project['id']}", cloud.admin)["limits"]
    assert other["absolute"]["totalInstancesUsed"] == 1
    _get(compute, f"/limits?tenant_id={cloud.boot.admin_project_id}", cloud.h(token), 403)


def test_quota_sets_show_update_detail_and_reset(compute: Compute) -> None:
    cloud = compute.cloud
    a, b = cloud.project("qs-a"), cloud.project("qs-b")
    _, token_a = cloud.member("qs-ua", a["id"])
    _, token_b = cloud.member("qs-ub", b["id"])
    url = f"{V21}/os-quota-sets/{a['id']}"
    shown = _get(compute, f"/os-quota-sets/{a['id']}", cloud.h(token_a))["quota_set"]
    assert shown["id"] == a["id"] and shown["instances"] == 10 and shown["fixed_ips"] == -1
    compute.create(cloud.h(token_a))
    compute.create(cloud.h(token_a))
    # Members cannot change quotas, nor read another project's.
    resp = compute.client.put(url, json={"quota_set": {"instances": 50}}, headers=cloud.h(token_a))
    assert resp.status_code == 403
    _get(compute, f"/os-quota-sets/{a['id']}", cloud.h(token_b), 403)
    _get(compute, f"/os-quota-sets/{a['id']}/detail", cloud.h(token_b), 403)
    _get(compute, f"/os-simple-tenant-usage/{a['id']}", cloud.h(token_b), 403)
    # Below usage is refused unless forced; the answer of an update has no id.
    resp = compute.client.put(url, json={"quota_set": {"instances": 1}}, headers=cloud.admin)
    assert resp.status_code == 400
    assert "already used and reserved 2" in resp.json()["badRequest"]["message"]
    resp = compute.client.put(
        url, json={"quota_set": {"instances": "3", "cores": -1}}, headers=cloud.admin
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()["quota_set"]
    assert "id" not in updated and (updated["instances"], updated["cores"]) == (3, -1)
    detail = _get(compute, f"/os-quota-sets/{a['id']}/detail", cloud.h(token_a))["quota_set"]
    assert detail["instances"] == {"limit": 3, "in_use": 2, "reserved": 0}
    assert detail["cores"]["limit"] == -1
    resp = compute.client.put(
        url, json={"quota_set": {"instances": 1, "force": True}}, headers=cloud.admin
    )
    assert resp.json()["quota_set"]["instances"] == 1
    assert compute.create(cloud.h(token_a)).status_code == 403
    defaults = _get(compute, f"/os-quota-sets/{a['id']}/defaults", cloud.h(token_a))
    assert defaults["quota_set"]["instances"] == 10
    assert compute.client.delete(url, headers=cloud.h(token_a)).status_code == 403
    assert compute.client.delete(url, headers=cloud.admin).status_code == 202
    assert _get(compute, f"/os-quota-sets/{a['id']}", cloud.admin)["quota_set"]["instances"] == 10


@pytest.mark.parametrize(
    "body",
    [
        {"quota_set": {"instances": -2}},
        {"quota_set": {"instances": "many"}},
        {"quota_set": {"instances": True}},
        {"quota_set": {"wombats": 1}},
        {"quota_set": {"instances": 2**31}},
        {"instances": 1},
    ],
)
def test_bad_quota_updates_are_400(compute: Compute, body: dict[str, Any]) -> None:
    project = compute.cloud.project("qs-bad")
    resp = compute.client.put(
        f"{V21}/os-quota-sets/{project['id']}", json=body, headers=compute.cloud.admin
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_unknown_project_quota_is_400(compute: Compute) -> None:
    resp = compute.client.put(
        f"{V21}/os-quota-sets/{uuid.uuid4().hex}",
        json={"quota_set": {"instances": 1}},
        headers=compute.cloud.admin,
    )
    assert resp.status_code == 400
    assert "is not a valid project" in resp.json()["badRequest"]["message"]


def test_simple_tenant_usage_counts_hours_of_live_and_deleted(
    compute: Compute, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud = compute.cloud
    project = cloud.project("use-p")
    _, token = cloud.member("use-u", project["id"])
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # The usage ledger's clock: the gone one runs from 3 h ago to 2 h ago, the live one
    # from 2 h ago on.
    monkeypatch.setattr(usage_clock, "clock", lambda: now - dt.timedelta(hours=3))
    gone = compute.create(cloud.h(token)).json()["server"]["id"]
    compute.converge()
    monkeypatch.setattr(usage_clock, "clock", lambda: now - dt.timedelta(hours=2))
    live = compute.create(cloud.h(token)).json()["server"]["id"]
    assert compute.client.delete(f"{SERVERS}/{gone}", headers=cloud.h(token)).status_code == 204
    compute.converge()
    monkeypatch.setattr(usage_clock, "clock", lambda: now)
    with compute.db.session() as session:  # launch times as the ledger saw them
        session.get(m.Instance, live).launched_at = now - dt.timedelta(hours=2)
        row = session.get(m.Instance, gone)
        row.launched_at = now - dt.timedelta(hours=3)
        row.terminated_at = now - dt.timedelta(hours=2)
    start = (now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    end = (now + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%f")
    usage = _get(
        compute, f"/os-simple-tenant-usage/{project['id']}?start={start}&end={end}", cloud.h(token)
    )["tenant_usage"]
    assert usage["tenant_id"] == project["id"]
    assert usage["total_hours"] == pytest.approx(3.0, abs=0.05)
    assert usage["total_vcpus_usage"] == pytest.approx(3.0, abs=0.05)
    assert usage["total_memory_mb_usage"] == pytest.approx(3 * 128, abs=10)
    by_id = {s["instance_id"]: s for s in usage["server_usages"]}
    assert by_id[gone]["state"] == "terminated" and by_id[gone]["ended_at"]
    assert by_id[live]["state"] == "active" and by_id[live]["ended_at"] is None
    assert by_id[live]["flavor"] and by_id[live]["uptime"] >= 7190
    # A period before anything ran: Nova answers an empty object.
    early = (now - dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S")
    empty = _get(
        compute,
        f"/os-simple-tenant-usage/{project['id']}?start={early}&end={start}",
        cloud.h(token),
    )
    assert empty == {"tenant_usage": {}}
    listed = _get(
        compute, f"/os-simple-tenant-usage?start={start}&end={end}&detailed=1", cloud.admin
    )["tenant_usages"]
    mine = [u for u in listed if u["tenant_id"] == project["id"]]
    assert len(mine) == 1 and len(mine[0]["server_usages"]) == 2
    brief = _get(compute, f"/os-simple-tenant-usage?start={start}&end={end}", cloud.admin)
    assert "server_usages" not in brief["tenant_usages"][0]
    _get(compute, f"/os-simple-tenant-usage?start={end}&end={start}", cloud.admin, 400)
    _get(compute, "/os-simple-tenant-usage?start=yesterday", cloud.admin, 400)

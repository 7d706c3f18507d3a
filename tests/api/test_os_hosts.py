"""os-hosts: the host list and its zone filter, a host's resources, enable/disable, the
501s Nova answers with libvirt, and admin-only access."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

HOSTS = "/compute/v2.1/os-hosts"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _error(resp: Any, status: int, kind: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()[kind]["code"] == status


def test_list_and_zone_filter(compute: Compute) -> None:
    c, admin = compute.client, compute.cloud.admin
    hosts = c.get(HOSTS, headers=admin).json()["hosts"]
    assert {"host_name": "fake-1", "service": "compute", "zone": "nova"} in hosts
    assert c.get(HOSTS, params={"zone": "nova"}, headers=admin).json()["hosts"] == [
        h for h in hosts if h["zone"] == "nova"
    ]
    assert c.get(HOSTS, params={"zone": ""}, headers=admin).json()["hosts"] == hosts
    assert c.get(HOSTS, params={"zone": "xxx"}, headers=admin).json()["hosts"] == []
    # Disabled services are not listed (Nova filters on disabled=False).
    resp = c.put(f"{HOSTS}/fake-1", json={"status": "disable"}, headers=admin)
    assert resp.json() == {"host": "fake-1", "status": "disabled"}
    assert all(h["host_name"] != "fake-1" for h in c.get(HOSTS, headers=admin).json()["hosts"])
    resp = c.put(f"{HOSTS}/fake-1", json={"status": "Enable"}, headers=admin)
    assert resp.json() == {"host": "fake-1", "status": "enabled"}
    services = c.get("/compute/v2.1/os-services", headers=admin).json()["services"]
    assert [s["status"] for s in services if s["host"] == "fake-1"] == ["enabled"]


def test_show_resources(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("hosts-p")
    member = cloud.h(cloud.member("hosts-u", project["id"])[1])
    for headers in (cloud.admin, member):
        assert compute.create(headers).status_code == 202
    compute.converge()
    resp = compute.client.get(f"{HOSTS}/fake-1", headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    rows = [r["resource"] for r in resp.json()["host"]]
    assert all(r["host"] == "fake-1" for r in rows)
    by = {r["project"]: r for r in rows}
    assert (by["(total)"]["cpu"], by["(total)"]["memory_mb"], by["(total)"]["disk_gb"]) == (
        8,
        8704,
        100,
    )
    flavor = compute.client.get("/compute/v2.1/flavors/1", headers=cloud.admin).json()["flavor"]
    one = (flavor["vcpus"], flavor["ram"], flavor["disk"] + flavor["OS-FLV-EXT-DATA:ephemeral"])
    used_max = by["(used_max)"]
    assert (used_max["cpu"], used_max["memory_mb"], used_max["disk_gb"]) == tuple(
        2 * x for x in one
    )
    assert by["(used_now)"]["cpu"] == 2 * one[0]
    mine = by[project["id"]]
    assert (mine["cpu"], mine["memory_mb"], mine["disk_gb"]) == one
    assert len(rows) == 5


def test_bad_requests_and_not_supported(compute: Compute) -> None:
    c, admin = compute.client, compute.cloud.admin
    url = f"{HOSTS}/fake-1"
    for body in (
        {},
        None,
        {"status": "invalid", "maintenance_mode": "enable"},
        {"status": "enable", "maintenance_mode": "invalid"},
        {"status": 1},
        {"status": "enable", "other": 1},
    ):
        _error(c.put(url, json=body, headers=admin), 400, "badRequest")
    _error(c.put(url, json={"maintenance_mode": "enable"}, headers=admin), 501, "notImplemented")
    _error(c.put(f"{HOSTS}/nowhere", json={"status": "enable"}, headers=admin), 404, "itemNotFound")
    _error(c.get(f"{HOSTS}/nowhere", headers=admin), 404, "itemNotFound")
    for action in ("startup", "shutdown", "reboot"):
        _error(c.get(f"{url}/{action}", headers=admin), 501, "notImplemented")
        _error(c.get(f"{HOSTS}/nowhere/{action}", headers=admin), 404, "itemNotFound")
    _error(c.get(f"{url}/explode", headers=admin), 404, "itemNotFound")


def test_non_admin_is_403(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("hosts-na")
    member = cloud.h(cloud.member("hosts-na-u", project["id"])[1])
    c, url = compute.client, f"{HOSTS}/fake-1"
    _error(c.get(HOSTS, headers=member), 403, "forbidden")
    _error(c.get(url, headers=member), 403, "forbidden")
    body = {"status": "enable", "maintenance_mode": "enable"}
    _error(c.put(url, json=body, headers=member), 403, "forbidden")
    for action in ("startup", "shutdown", "reboot"):
        _error(c.get(f"{url}/{action}", headers=member), 403, "forbidden")

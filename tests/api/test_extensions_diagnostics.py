"""/extensions (Nova's fixed list) and os-server-diagnostics (admin, 409 unless running)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

EXTENSIONS = "/compute/v2.1/extensions"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def test_extensions_list_and_show(cloud: Any) -> None:
    project = cloud.project("ext-p")
    member = cloud.h(cloud.member("ext-u", project["id"])[1])
    found = cloud.client.get(EXTENSIONS, headers=member).json()["extensions"]
    assert "Hosts" in {e["name"] for e in found}
    assert all(
        set(e) == {"alias", "name", "description", "links", "namespace", "updated"} for e in found
    )
    shown = cloud.client.get(f"{EXTENSIONS}/os-consoles", headers=member).json()["extension"]
    assert shown["alias"] == "os-consoles"
    resp = cloud.client.get(f"{EXTENSIONS}/os-nothing", headers=member)
    assert resp.status_code == 404 and resp.json()["itemNotFound"]["code"] == 404
    assert cloud.client.get(EXTENSIONS).status_code == 401


def test_diagnostics(compute: Compute) -> None:
    cloud = compute.cloud
    admin = cloud.admin
    project = cloud.project("diag-p")
    member = cloud.h(cloud.member("diag-u", project["id"])[1])
    resp = compute.create(member)
    server_id = resp.json()["server"]["id"]
    url = f"{SERVERS}/{server_id}/diagnostics"
    building = compute.client.get(url, headers=admin)
    assert building.status_code == 409 and "conflictingRequest" in building.json()
    compute.converge()
    flavor = compute.client.get("/compute/v2.1/flavors/1", headers=admin).json()["flavor"]
    resp = compute.client.get(url, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json()["memory"] == flavor["ram"] * 1024
    denied = compute.client.get(url, headers=member)
    assert denied.status_code == 403 and "forbidden" in denied.json()
    missing = compute.client.get(
        f"{SERVERS}/00000000-0000-4000-8000-000000000000/diagnostics", headers=admin
    )
    assert missing.status_code == 404
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    compute.converge()
    assert compute.client.get(url, headers=admin).status_code == 409

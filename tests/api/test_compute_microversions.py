"""Version boundaries of compute microversions 2.12 to 2.21 outside the server body:
os-virtual-interfaces (2.12), server group owners (2.13), soft group policies (2.15) and
instance actions of deleted servers (2.21), on every database backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

GROUPS = "/compute/v2.1/os-server-groups"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _at(headers: dict[str, str], version: str) -> dict[str, str]:
    return {**headers, "X-OpenStack-Nova-API-Version": version}


@pytest.mark.parametrize("version", ["2.1", "2.12", "latest"])
def test_virtual_interfaces_are_not_supported(compute: Compute, version: str) -> None:
    admin = compute.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    resp = compute.client.get(
        f"{SERVERS}/{server_id}/os-virtual-interfaces", headers=_at(admin, version)
    )
    assert resp.status_code == 400, resp.text
    assert resp.json() == {
        "badRequest": {
            "code": 400,
            "message": "Listing virtual interfaces is not supported by this cloud.",
        }
    }
    # A server the caller cannot see is a 404 first, as in Nova.
    resp = compute.client.get(
        f"{SERVERS}/{'0' * 8}-0000-4000-8000-{'0' * 12}/os-virtual-interfaces",
        headers=_at(admin, version),
    )
    assert resp.status_code == 404


def test_server_group_owners_from_2_13(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("sg13")
    user, token = cloud.member("sg13-u", project["id"])
    body = {"server_group": {"name": "g", "policies": ["affinity"]}}
    old = compute.client.post(GROUPS, json=body, headers=_at(cloud.h(token), "2.12"))
    assert old.status_code == 200, old.text
    assert set(old.json()["server_group"]) == {"id", "name", "policies", "members", "metadata"}
    new = compute.client.post(GROUPS, json=body, headers=_at(cloud.h(token), "2.13"))
    group = new.json()["server_group"]
    assert (group["project_id"], group["user_id"]) == (project["id"], user["id"])
    shown = compute.client.get(
        f"{GROUPS}/{old.json()['server_group']['id']}", headers=_at(cloud.admin, "2.13")
    ).json()["server_group"]
    assert (shown["project_id"], shown["user_id"]) == (project["id"], user["id"])
    listed = compute.client.get(GROUPS, headers=_at(cloud.h(token), "2.13")).json()
    assert {(g["project_id"], g["user_id"]) for g in listed["server_groups"]} == {
        (project["id"], user["id"])
    }


@pytest.mark.parametrize("policy", ["soft-affinity", "soft-anti-affinity"])
def test_soft_policies_from_2_15(compute: Compute, policy: str) -> None:
    admin = compute.cloud.admin
    body = {"server_group": {"name": "g", "policies": [policy]}}
    resp = compute.client.post(GROUPS, json=body, headers=_at(admin, "2.14"))
    assert resp.status_code == 400, resp.text
    assert policy in resp.json()["badRequest"]["message"]
    assert compute.client.get(GROUPS, headers=admin).json()["server_groups"] == []
    resp = compute.client.post(GROUPS, json=body, headers=_at(admin, "2.15"))
    assert resp.status_code == 200, resp.text
    group = resp.json()["server_group"]
    assert group["policies"] == [policy]
    # A server booted into it is placed (soft policies weigh, never filter).
    boot = {
        "server": {"name": "vm", "imageRef": compute.image_id, "flavorRef": "1"},
        "os:scheduler_hints": {"group": group["id"]},
    }
    server_id = compute.client.post(SERVERS, json=boot, headers=admin).json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"


def test_project_id_in_urls_is_optional(compute: Compute) -> None:
    """2.18's routes, at every version: /compute/v2.1/{project_id}/... is the same API."""
    cloud = compute.cloud
    admin_project = cloud.boot.admin_project_id
    with_project = f"/compute/v2.1/{admin_project}"
    for version in ("2.1", "2.18"):
        h = _at(cloud.admin, version)
        resp = compute.client.post(
            f"{with_project}/servers",
            json={"server": {"name": "p", "imageRef": compute.image_id, "flavorRef": "1"}},
            headers=h,
        )
        assert resp.status_code == 202, resp.text
        server_id = resp.json()["server"]["id"]
        shown = compute.client.get(f"{with_project}/servers/{server_id}", headers=h)
        assert shown.status_code == 200 and shown.json()["server"]["id"] == server_id
        assert shown.headers["X-OpenStack-Nova-API-Version"] == version
        listed = compute.client.get(f"{with_project}/servers/detail", headers=h).json()
        assert server_id in {s["id"] for s in listed["servers"]}
        for path in (
            "/flavors",
            "/os-services",
            "/os-server-groups",
            "/limits",
            f"/os-quota-sets/{admin_project}",
            "/os-hypervisors",
        ):
            plain = compute.client.get(f"/compute/v2.1{path}", headers=h)
            projected = compute.client.get(f"{with_project}{path}", headers=h)
            assert (plain.status_code, projected.status_code) == (200, 200), path
            assert projected.json().keys() == plain.json().keys(), path
    assert (
        compute.client.get(f"{with_project}/", headers=cloud.admin).json()["version"]["id"]
        == "v2.1"
    )
    # Another project's id in the URL: Nova's 400, for admins too.
    other = cloud.project("url-other")["id"]
    resp = compute.client.get(f"/compute/v2.1/{other}/servers", headers=cloud.admin)
    assert resp.status_code == 400, resp.text
    assert "doesn't match Context's project_id" in resp.json()["badRequest"]["message"]
    # A first segment that is no project id is still an unknown resource.
    assert (
        compute.client.get("/compute/v2.1/nosuch/servers", headers=cloud.admin).status_code == 404
    )


def test_instance_actions_of_deleted_servers_from_2_21(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("ia-p")
    _, token = cloud.member("ia-u", project["id"])
    owner = cloud.h(token)
    server_id = compute.create(owner).json()["server"]["id"]
    compute.converge()
    actions = f"{SERVERS}/{server_id}/os-instance-actions"
    live = compute.client.get(actions, headers=_at(owner, "2.20"))
    assert live.status_code == 200, live.text
    request_id = live.json()["instanceActions"][0]["request_id"]
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=owner).status_code == 204
    compute.converge()
    for version in ("2.1", "2.20"):
        resp = compute.client.get(actions, headers=_at(owner, version))
        assert resp.status_code == 404, resp.text
        assert "itemNotFound" in resp.json()
        resp = compute.client.get(f"{actions}/{request_id}", headers=_at(owner, version))
        assert resp.status_code == 404, resp.text
    resp = compute.client.get(actions, headers=_at(owner, "2.21"))
    assert resp.status_code == 200, resp.text
    assert [a["action"] for a in resp.json()["instanceActions"]] == ["delete", "create"]
    resp = compute.client.get(f"{actions}/{request_id}", headers=_at(owner, "2.21"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["instanceAction"]["action"] == "create"
    assert compute.client.get(actions, headers=_at(cloud.admin, "2.21")).status_code == 200
    # Still only for those who could see the server.
    _, other = cloud.member("ia-x", cloud.project("ia-q")["id"])
    assert compute.client.get(actions, headers=_at(cloud.h(other), "2.21")).status_code == 404

"""Server groups: CRUD in Nova's shapes, quotas, and the scheduler honouring their policies
(hard filters and soft weighers) over several fake hosts, on every database backend."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.config import SchedulerConfig
from kumo.controller import scheduler
from kumo.db import models as m

GROUPS = "/compute/v2.1/os-server-groups"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    c = Compute(cloud, tmp_path)
    c.register(str(uuid.uuid4()), "fake-2", 8, 8704)
    c.register(str(uuid.uuid4()), "fake-3", 8, 8704)
    return c


def _group(compute: Compute, headers: dict[str, str], policy: str, name: str = "g") -> Any:
    body = {"server_group": {"name": name, "policies": [policy]}}
    return compute.client.post(GROUPS, json=body, headers=headers)


def _boot(compute: Compute, headers: dict[str, str], group_id: str) -> str:
    body = {
        "server": {"name": "vm", "imageRef": compute.image_id, "flavorRef": "1"},
        "os:scheduler_hints": {"group": group_id},
    }
    resp = compute.client.post(SERVERS, json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    return server_id


def _hosts(compute: Compute, ids: list[str]) -> list[str | None]:
    scheduler.schedule_pending(compute.db, SchedulerConfig(), 60.0)
    with compute.db.session() as session:
        return [session.get(m.Instance, i).host_id for i in ids]


def test_crud_in_nova_shape(compute: Compute) -> None:
    admin = compute.cloud.admin
    resp = _group(compute, admin, "anti-affinity", "web")
    assert resp.status_code == 200, resp.text
    group = resp.json()["server_group"]
    assert set(group) == {"id", "name", "policies", "members", "metadata"}  # 2.1 to 2.12
    assert (group["name"], group["policies"], group["members"]) == ("web", ["anti-affinity"], [])
    server_id = _boot(compute, admin, group["id"])
    shown = compute.client.get(f"{GROUPS}/{group['id']}", headers=admin).json()["server_group"]
    assert shown["members"] == [server_id]
    listed = compute.client.get(GROUPS, headers=admin).json()["server_groups"]
    assert [g["id"] for g in listed] == [group["id"]]
    # A deleted server leaves its group.
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    compute.converge()
    shown = compute.client.get(f"{GROUPS}/{group['id']}", headers=admin).json()["server_group"]
    assert shown["members"] == []
    assert compute.client.delete(f"{GROUPS}/{group['id']}", headers=admin).status_code == 204
    resp = compute.client.get(f"{GROUPS}/{group['id']}", headers=admin)
    assert resp.status_code == 404
    assert "itemNotFound" in resp.json()


@pytest.mark.parametrize(
    "body",
    [
        {"name": "g", "policies": ["soft-affinity"]},  # needs 2.15
        {"name": "g", "policies": ["affinity", "anti-affinity"]},
        {"name": "g", "policies": []},
        {"name": "g", "policy": "affinity"},  # 2.64's shape
        {"name": "", "policies": ["affinity"]},
        {"policies": ["affinity"]},
    ],
)
def test_bad_create_is_400(compute: Compute, body: dict[str, Any]) -> None:
    resp = compute.client.post(GROUPS, json={"server_group": body}, headers=compute.cloud.admin)
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_quota_and_isolation(compute: Compute) -> None:
    cloud = compute.cloud
    a, b = cloud.project("sg-a"), cloud.project("sg-b")
    _, token_a = cloud.member("sg-ua", a["id"])
    _, token_b = cloud.member("sg-ub", b["id"])
    with compute.db.session() as session:
        session.add(m.QuotaLimit(project_id=a["id"], resource="server_groups", hard_limit=1))
        session.add(m.QuotaLimit(project_id=a["id"], resource="server_group_members", hard_limit=1))
    group_id = _group(compute, cloud.h(token_a), "affinity").json()["server_group"]["id"]
    resp = _group(compute, cloud.h(token_a), "affinity")
    assert resp.status_code == 403
    assert resp.json()["forbidden"]["message"] == "Quota exceeded, too many server groups."
    _boot(compute, cloud.h(token_a), group_id)
    body = {
        "server": {"name": "vm", "imageRef": compute.image_id, "flavorRef": "1"},
        "os:scheduler_hints": {"group": group_id},
    }
    resp = compute.client.post(SERVERS, json=body, headers=cloud.h(token_a))
    assert resp.status_code == 403
    assert "too many servers in group" in resp.json()["forbidden"]["message"]
    assert len(compute.client.get(SERVERS, headers=cloud.h(token_a)).json()["servers"]) == 1
    # Project B sees nothing of A's group and cannot put servers in it.
    assert compute.client.get(f"{GROUPS}/{group_id}", headers=cloud.h(token_b)).status_code == 404
    assert (
        compute.client.delete(f"{GROUPS}/{group_id}", headers=cloud.h(token_b)).status_code == 404
    )
    assert compute.client.get(GROUPS, headers=cloud.h(token_b)).json()["server_groups"] == []
    body["os:scheduler_hints"] = {"group": group_id}
    resp = compute.client.post(SERVERS, json=body, headers=cloud.h(token_b))
    assert resp.status_code == 400
    body["os:scheduler_hints"] = {"group": "not-a-uuid"}
    assert compute.client.post(SERVERS, json=body, headers=cloud.h(token_b)).status_code == 400
    everyone = compute.client.get(f"{GROUPS}?all_projects=True", headers=cloud.admin).json()
    assert group_id in [g["id"] for g in everyone["server_groups"]]


def test_anti_affinity_spreads_then_fails_naming_the_policy(compute: Compute) -> None:
    admin = compute.cloud.admin
    group_id = _group(compute, admin, "anti-affinity").json()["server_group"]["id"]
    ids = [_boot(compute, admin, group_id) for _ in range(4)]
    placed = _hosts(compute, ids)
    assert len({h for h in placed[:3]}) == 3 and None not in placed[:3]
    assert placed[3] is None
    shown = compute.show(ids[3], admin)
    assert shown["status"] == "ERROR"
    assert "No valid host" in shown["fault"]["message"]
    assert f"server group {group_id} policy anti-affinity" in shown["fault"]["details"]


def test_affinity_keeps_members_together(compute: Compute) -> None:
    admin = compute.cloud.admin
    group_id = _group(compute, admin, "affinity").json()["server_group"]["id"]
    first = _boot(compute, admin, group_id)
    (host,) = _hosts(compute, [first])
    others = [_boot(compute, admin, group_id) for _ in range(3)]
    assert _hosts(compute, others) == [host] * 3
    # The members' host disabled: no other host may take a new member.
    with compute.db.session() as session:
        session.get(m.Host, host).enabled = False
    late = _boot(compute, admin, group_id)
    assert _hosts(compute, [late]) == [None]
    assert "policy affinity" in compute.show(late, admin)["fault"]["details"]


@pytest.mark.parametrize(
    ("policy", "together"), [("soft-affinity", True), ("soft-anti-affinity", False)]
)
def test_soft_policies_weigh_instead_of_filtering(
    compute: Compute, policy: str, together: bool
) -> None:
    # Soft policies need 2.15 on the API; the scheduler honours rows written by any path.
    admin = compute.cloud.admin
    group_id = _group(compute, admin, "affinity").json()["server_group"]["id"]
    with compute.db.session() as session:
        session.get(m.ServerGroup, group_id).policy = policy
    ids = [_boot(compute, admin, group_id) for _ in range(5)]
    placed = [_hosts(compute, [i])[0] for i in ids]
    assert None not in placed  # never a NoValidHost: soft policies only weigh
    if together:
        assert len(set(placed)) == 1
    else:
        assert len(set(placed)) == 3

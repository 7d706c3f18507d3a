"""Server metadata: merge, replace, items, the metadata_items quota, locks and isolation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.db import models as m


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _active(compute: Compute, headers: dict[str, str], **extra: Any) -> str:
    resp = compute.create(headers, **extra)
    assert resp.status_code == 202, resp.text
    compute.converge()
    server_id: str = resp.json()["server"]["id"]
    return server_id


def test_merge_replace_and_items(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin, metadata={"a": "1"})
    url = f"{SERVERS}/{server_id}/metadata"
    c = compute.client
    assert c.get(url, headers=admin).json() == {"metadata": {"a": "1"}}
    resp = c.post(url, json={"metadata": {"b": "2", "a": "x"}}, headers=admin)
    assert resp.status_code == 200
    assert resp.json() == {"metadata": {"a": "x", "b": "2"}}
    resp = c.put(url, json={"metadata": {"c": "3"}}, headers=admin)
    assert resp.json() == {"metadata": {"c": "3"}}
    assert c.get(f"{url}/c", headers=admin).json() == {"meta": {"c": "3"}}
    resp = c.put(f"{url}/d", json={"meta": {"d": "4"}}, headers=admin)
    assert (resp.status_code, resp.json()) == (200, {"meta": {"d": "4"}})
    assert c.delete(f"{url}/c", headers=admin).status_code == 204
    assert compute.show(server_id, admin)["metadata"] == {"d": "4"}
    resp = c.get(f"{url}/c", headers=admin)
    assert resp.status_code == 404
    assert resp.json()["itemNotFound"]["message"] == "Metadata item was not found"
    assert c.delete(f"{url}/c", headers=admin).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/k", {"meta": {"other": "v"}}),  # body and URI mismatch
        ("put", "/k", {"meta": {"k": "v", "j": "w"}}),  # too many items
        ("put", "/k", {"nometa": {}}),
        ("post", "", {"metadata": {"": "v"}}),  # blank key
        ("post", "", {"metadata": {"k" * 256: "v"}}),
        ("post", "", {"metadata": {"k": 5}}),
        ("post", "", {"metadata": ["k"]}),
        ("put", "", {"meta": {"k": "v"}}),
    ],
)
def test_bad_input_is_400(compute: Compute, method: str, path: str, body: dict[str, Any]) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    resp = getattr(compute.client, method)(
        f"{SERVERS}/{server_id}/metadata{path}", json=body, headers=admin
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400


def test_quota_lock_and_isolation(compute: Compute) -> None:
    cloud = compute.cloud
    a, b = cloud.project("md-a"), cloud.project("md-b")
    _, token_a = cloud.member("md-ua", a["id"])
    _, token_b = cloud.member("md-ub", b["id"])
    with compute.db.session() as session:
        session.add(m.QuotaLimit(project_id=a["id"], resource="metadata_items", hard_limit=2))
    server_id = _active(compute, cloud.h(token_a), metadata={"a": "1"})
    url = f"{SERVERS}/{server_id}/metadata"
    c = compute.client
    assert c.post(url, json={"metadata": {"b": "2"}}, headers=cloud.h(token_a)).status_code == 200
    resp = c.put(f"{url}/c", json={"meta": {"c": "3"}}, headers=cloud.h(token_a))
    assert resp.status_code == 403
    assert "metadata_items" in resp.json()["forbidden"]["message"]
    assert (
        c.put(
            url, json={"metadata": {"x": "1", "y": "2", "z": "3"}}, headers=cloud.h(token_a)
        ).status_code
        == 403
    )
    assert c.get(url, headers=cloud.h(token_a)).json()["metadata"] == {"a": "1", "b": "2"}
    # Locked by an admin: the owner may read but not change.
    assert compute.action(server_id, cloud.admin, {"lock": None}).status_code == 202
    resp = c.delete(f"{url}/a", headers=cloud.h(token_a))
    assert resp.status_code == 409
    assert "locked" in resp.json()["conflictingRequest"]["message"]
    assert c.post(url, json={"metadata": {"a": "2"}}, headers=cloud.h(token_a)).status_code == 409
    assert c.get(f"{url}/a", headers=cloud.h(token_a)).status_code == 200
    # Another project sees nothing.
    for method, path, body in (
        ("get", "", None),
        ("get", "/a", None),
        ("post", "", {"metadata": {"q": "1"}}),
        ("put", "/a", {"meta": {"a": "9"}}),
        ("delete", "/a", None),
    ):
        kwargs: dict[str, Any] = {"headers": cloud.h(token_b)}
        if body is not None:
            kwargs["json"] = body
        assert getattr(c, method)(f"{url}{path}", **kwargs).status_code == 404, (method, path)


def test_server_in_transition_is_409(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]  # still BUILD
    resp = compute.client.post(
        f"{SERVERS}/{server_id}/metadata", json={"metadata": {"a": "1"}}, headers=admin
    )
    assert resp.status_code == 409
    assert "vm_state building" in resp.json()["conflictingRequest"]["message"]

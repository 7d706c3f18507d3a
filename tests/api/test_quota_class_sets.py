"""os-quota-class-sets: the ``default`` class is every project's limit unless it has its
own; other classes are stored and shown; admin only; Nova's bad-body answers."""

from __future__ import annotations

from typing import Any

CLASSES = "/compute/v2.1/os-quota-class-sets"
QUOTAS = "/compute/v2.1/os-quota-sets"


def _error(resp: Any, status: int, kind: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()[kind]["code"] == status


def test_show_and_update_default_class(cloud: Any) -> None:
    c, admin = cloud.client, cloud.admin
    shown = c.get(f"{CLASSES}/default", headers=admin).json()["quota_class_set"]
    assert shown["id"] == "default"
    assert shown["instances"] == 10 and shown["floating_ips"] == 10
    assert "server_groups" not in shown and "server_group_members" not in shown
    body = {k: v + 100 for k, v in shown.items() if k != "id"}
    resp = c.put(f"{CLASSES}/default", json={"quota_class_set": body}, headers=admin)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"quota_class_set": body}
    assert c.get(f"{CLASSES}/default", headers=admin).json()["quota_class_set"] == {
        "id": "default",
        **body,
    }


def test_default_class_is_every_projects_limit_without_override(cloud: Any) -> None:
    c, admin = cloud.client, cloud.admin
    p1, p2 = cloud.project("qc-1")["id"], cloud.project("qc-2")["id"]
    resp = c.put(f"{QUOTAS}/{p1}", json={"quota_set": {"cores": 7}}, headers=admin)
    assert resp.status_code == 200
    body = {"quota_class_set": {"cores": 55, "instances": "33", "ram": -1}}
    assert c.put(f"{CLASSES}/default", json=body, headers=admin).status_code == 200
    one = c.get(f"{QUOTAS}/{p1}", headers=admin).json()["quota_set"]
    two = c.get(f"{QUOTAS}/{p2}", headers=admin).json()["quota_set"]
    assert (one["cores"], one["instances"], one["ram"]) == (7, 33, -1)
    assert (two["cores"], two["instances"], two["ram"]) == (55, 33, -1)
    defaults = c.get(f"{QUOTAS}/{p2}/defaults", headers=admin).json()["quota_set"]
    assert (defaults["cores"], defaults["instances"]) == (55, 33)
    _, token = cloud.member("qc-u", p2)
    limits = c.get("/compute/v2.1/limits", headers=cloud.h(token)).json()["limits"]["absolute"]
    assert (limits["maxTotalCores"], limits["maxTotalInstances"]) == (55, 33)
    # Resetting a project returns it to the class, not to the built-in defaults.
    assert c.delete(f"{QUOTAS}/{p1}", headers=admin).status_code == 202
    assert c.get(f"{QUOTAS}/{p1}", headers=admin).json()["quota_set"]["cores"] == 55


def test_other_classes_are_stored_apart(cloud: Any) -> None:
    c, admin = cloud.client, cloud.admin
    resp = c.put(f"{CLASSES}/gold", json={"quota_class_set": {"cores": 99}}, headers=admin)
    assert resp.json()["quota_class_set"]["cores"] == 99
    assert c.get(f"{CLASSES}/gold", headers=admin).json()["quota_class_set"]["cores"] == 99
    assert c.get(f"{CLASSES}/default", headers=admin).json()["quota_class_set"]["cores"] == 20
    assert c.get(f"{CLASSES}/silver", headers=admin).json()["quota_class_set"]["cores"] == 20


def test_bad_bodies_and_non_admin(cloud: Any) -> None:
    c, admin = cloud.client, cloud.admin
    url = f"{CLASSES}/default"
    for body in (
        {},
        {"quota_set": {"cores": 1}},
        {"quota_class_set": {"cores": -2}},
        {"quota_class_set": {"cores": "x"}},
        {"quota_class_set": {"cores": True}},
        {"quota_class_set": {"cores": 2**31}},
        {"quota_class_set": {"server_groups": 1}},
        {"quota_class_set": {"bogus": 1}},
    ):
        _error(c.put(url, json=body, headers=admin), 400, "badRequest")
    _error(c.get(f"{CLASSES}/{'x' * 80}", headers=admin), 400, "badRequest")
    project = cloud.project("qc-na")["id"]
    _, token = cloud.member("qc-na-u", project)
    member = cloud.h(token)
    _error(c.get(url, headers=member), 403, "forbidden")
    _error(c.put(url, json={"quota_class_set": {"cores": 1}}, headers=member), 403, "forbidden")
    assert c.get(url, headers=admin).json()["quota_class_set"]["cores"] == 20

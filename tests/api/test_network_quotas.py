"""Neutron quotas: defaults, admin updates and resets, details, enforcement with Neutron's
OverQuota error, and who may read or change them."""

from __future__ import annotations

from typing import Any

from netapi import V2, error, network, subnet, tenant

DEFAULTS = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "subnetpool": -1,
}


def test_defaults_update_details_reset(cloud: Any) -> None:
    project, h = tenant(cloud, "alpha")
    assert cloud.client.get(f"{V2}/quotas/{project}", headers=h).json() == {"quota": DEFAULTS}
    default = cloud.client.get(f"{V2}/quotas/{project}/default", headers=h).json()["quota"]
    assert default == DEFAULTS
    resp = cloud.client.put(
        f"{V2}/quotas/{project}", json={"quota": {"network": 1, "port": 2}}, headers=cloud.admin
    )
    assert resp.status_code == 200
    assert resp.json()["quota"] == {**DEFAULTS, "network": 1, "port": 2}
    listed = cloud.client.get(f"{V2}/quotas", headers=cloud.admin).json()["quotas"]
    assert [q["project_id"] for q in listed] == [project]
    net = network(cloud, h)
    subnet(cloud, h, net["id"])
    details = cloud.client.get(f"{V2}/quotas/{project}/details", headers=h).json()["quota"]
    assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
    assert details["subnet"]["used"] == 1 and details["port"]["limit"] == 2
    assert cloud.client.delete(f"{V2}/quotas/{project}", headers=cloud.admin).status_code == 204
    assert cloud.client.get(f"{V2}/quotas/{project}", headers=h).json()["quota"] == DEFAULTS
    assert cloud.client.get(f"{V2}/quotas", headers=cloud.admin).json()["quotas"] == []


def test_enforcement_is_409_over_quota(cloud: Any) -> None:
    project, h = tenant(cloud, "alpha")
    cloud.client.put(
        f"{V2}/quotas/{project}",
        json={"quota": {"network": 1, "port": 1, "subnet": 1}},
        headers=cloud.admin,
    )
    net = network(cloud, h)
    body = error(cloud.client.post(f"{V2}/networks", json={"network": {}}, headers=h), 409)
    assert body["type"] == "OverQuota"
    assert body["message"] == "Quota exceeded for resources: ['network']."
    subnet(cloud, h, net["id"])
    resp = cloud.client.post(
        f"{V2}/subnets",
        json={"subnet": {"network_id": net["id"], "cidr": "10.1.0.0/24", "ip_version": 4}},
        headers=h,
    )
    error(resp, 409, "OverQuota")
    ok = cloud.client.post(f"{V2}/ports", json={"port": {"network_id": net["id"]}}, headers=h)
    assert ok.status_code == 201
    resp = cloud.client.post(f"{V2}/ports", json={"port": {"network_id": net["id"]}}, headers=h)
    assert error(resp, 409, "OverQuota")["message"] == "Quota exceeded for resources: ['port']."
    # A bulk request over the limit creates nothing.
    cloud.client.put(f"{V2}/quotas/{project}", json={"quota": {"port": 2}}, headers=cloud.admin)
    bulk = cloud.client.post(
        f"{V2}/ports",
        json={"ports": [{"network_id": net["id"]}, {"network_id": net["id"]}]},
        headers=h,
    )
    error(bulk, 409, "OverQuota")
    assert len(cloud.client.get(f"{V2}/ports", headers=h).json()["ports"]) == 1
    # Unlimited.
    cloud.client.put(f"{V2}/quotas/{project}", json={"quota": {"network": -1}}, headers=cloud.admin)
    network(cloud, h)


def test_policy_and_bad_input(cloud: Any) -> None:
    project, h = tenant(cloud, "alpha")
    other, hb = tenant(cloud, "beta")
    error(
        cloud.client.put(f"{V2}/quotas/{project}", json={"quota": {"network": 5}}, headers=h), 403
    )
    error(cloud.client.delete(f"{V2}/quotas/{project}", headers=h), 403)
    error(cloud.client.get(f"{V2}/quotas", headers=h), 403)
    error(cloud.client.get(f"{V2}/quotas/{other}", headers=h), 403)
    error(cloud.client.get(f"{V2}/quotas/{other}/details", headers=h), 403)
    for bad in ({"network": "many"}, {"network": -2}, {"widgets": 3}, {"network": True}):
        resp = cloud.client.put(f"{V2}/quotas/{project}", json={"quota": bad}, headers=cloud.admin)
        error(resp, 400)
    error(cloud.client.put(f"{V2}/quotas/{project}", json={"nope": {}}, headers=cloud.admin), 400)
    tenant_info = cloud.client.get(f"{V2}/quotas/tenant", headers=hb).json()
    assert tenant_info["tenant"]["tenant_id"] == other


def test_compute_quota_sets_do_not_show_network_rows(cloud: Any) -> None:
    project, _ = tenant(cloud, "alpha")
    cloud.client.put(f"{V2}/quotas/{project}", json={"quota": {"port": 7}}, headers=cloud.admin)
    resp = cloud.client.get(f"/compute/v2.1/os-quota-sets/{project}", headers=cloud.admin)
    assert resp.status_code == 200 and "port" not in resp.json()["quota_set"]

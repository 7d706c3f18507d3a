"""Nova's os-security-groups and os-security-group-rules proxies over Neutron's groups."""

from __future__ import annotations

import uuid
from typing import Any

SG = "/compute/v2.1/os-security-groups"
RULES = "/compute/v2.1/os-security-group-rules"


def _member(cloud: Any, name: str) -> tuple[str, dict[str, str]]:
    project = cloud.project(name)
    _, token = cloud.member(f"{name}-user", project["id"])
    return project["id"], cloud.h(token)


def _nova_error(resp: Any, status: int, key: str) -> str:
    assert resp.status_code == status, resp.text
    message: str = resp.json()[key]["message"]
    assert message
    return message


def _group(cloud: Any, headers: dict[str, str], name: str = "web") -> Any:
    body = {"security_group": {"name": name, "description": f"{name} servers"}}
    resp = cloud.client.post(SG, json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["security_group"]


def test_create_list_show_update_delete(cloud: Any) -> None:
    project_id, member = _member(cloud, "nsg-crud")
    made = [_group(cloud, member, f"g{i}") for i in range(3)]
    assert made[0] == {
        "id": made[0]["id"],
        "name": "g0",
        "description": "g0 servers",
        "tenant_id": project_id,
        "rules": [],  # the egress rules Neutron adds are not Nova's
    }
    listed = cloud.client.get(SG, headers=member).json()["security_groups"]
    assert [g["name"] for g in listed] == ["default", "g0", "g1", "g2"]
    for group in made:
        assert group in listed
    default = listed[0]
    assert {r["group"]["name"] for r in default["rules"]} == {"default"}
    page = cloud.client.get(SG, params={"limit": 2, "offset": 1}, headers=member).json()
    assert [g["name"] for g in page["security_groups"]] == ["g0", "g1"]
    url = f"{SG}/{made[0]['id']}"
    assert cloud.client.get(url, headers=member).json()["security_group"] == made[0]
    resp = cloud.client.put(
        url, json={"security_group": {"name": "g9", "description": "d"}}, headers=member
    )
    assert resp.status_code == 200 and resp.json()["security_group"]["name"] == "g9"
    assert cloud.client.delete(url, headers=member).status_code == 202
    _nova_error(cloud.client.get(url, headers=member), 404, "itemNotFound")
    _nova_error(cloud.client.delete(url, headers=member), 404, "itemNotFound")
    # The same group through Neutron.
    neutron = cloud.client.get(f"/network/v2.0/security-groups/{made[1]['id']}", headers=member)
    assert neutron.status_code == 200


def test_group_errors(cloud: Any) -> None:
    _, member = _member(cloud, "nsg-err")
    for body in (
        None,
        {"other": {}},
        {"security_group": {"name": "x"}},
        {"security_group": {"name": " ", "description": "d"}},
        {"security_group": {"name": "x" * 256, "description": "d"}},
        {"security_group": {"name": 5, "description": "d"}},
    ):
        _nova_error(cloud.client.post(SG, json=body, headers=member), 400, "badRequest")
    # Neutron's conflicts come back as Nova's over-quota 403.
    body = {"security_group": {"name": "default", "description": "d"}}
    _nova_error(cloud.client.post(SG, json=body, headers=member), 403, "forbidden")
    default = cloud.client.get(SG, headers=member).json()["security_groups"][0]
    url = f"{SG}/{default['id']}"
    body = {"security_group": {"name": "renamed", "description": "d"}}
    _nova_error(cloud.client.put(url, json=body, headers=member), 400, "badRequest")
    body = {"security_group": {"name": "default", "description": "new text"}}
    assert cloud.client.put(url, json=body, headers=member).status_code == 200
    _nova_error(cloud.client.delete(url, headers=member), 400, "badRequest")
    _nova_error(cloud.client.delete(f"{SG}/", headers=member), 404, "itemNotFound")
    # Names are checked stripped and kept as given.
    spaced = _group(cloud, member, " spaced name ")
    assert spaced["name"] == " spaced name "


def test_rules_in_nova_shape(cloud: Any) -> None:
    project_id, member = _member(cloud, "nsg-rules")
    group = _group(cloud, member)
    peer = _group(cloud, member, "peer")

    def create(**rule: Any) -> Any:
        body = {"security_group_rule": {"parent_group_id": group["id"], **rule}}
        return cloud.client.post(RULES, json=body, headers=member)

    resp = create(ip_protocol="tcp", from_port=22, to_port=22)
    assert resp.status_code == 200, resp.text
    ssh = resp.json()["security_group_rule"]
    assert ssh == {
        "id": ssh["id"],
        "parent_group_id": group["id"],
        "ip_protocol": "tcp",
        "from_port": 22,
        "to_port": 22,
        "ip_range": {"cidr": "0.0.0.0/0"},
        "group": {},
    }
    ping = create(ip_protocol="icmp", from_port=-1, to_port=-1).json()["security_group_rule"]
    assert (ping["from_port"], ping["to_port"]) == (-1, -1)
    cidr = create(ip_protocol="udp", from_port=53, to_port=53, cidr="10.2.3.124/24").json()
    assert cidr["security_group_rule"]["ip_range"] == {"cidr": "10.2.3.124/24"}
    by_group = create(ip_protocol="tcp", group_id=peer["id"]).json()["security_group_rule"]
    assert by_group["group"] == {"name": "peer", "tenant_id": project_id}
    assert (by_group["from_port"], by_group["to_port"]) == (1, 65535)
    assert by_group["ip_range"] == {}
    shown = cloud.client.get(f"{SG}/{group['id']}", headers=member).json()["security_group"]
    assert {r["id"] for r in shown["rules"]} == {
        ssh["id"],
        ping["id"],
        cidr["security_group_rule"]["id"],
        by_group["id"],
    }
    # Neutron sees the same rule.
    neutron = cloud.client.get(f"/network/v2.0/security-group-rules/{ssh['id']}", headers=member)
    rule = neutron.json()["security_group_rule"]
    assert (rule["direction"], rule["port_range_min"], rule["remote_ip_prefix"]) == (
        "ingress",
        22,
        "0.0.0.0/0",
    )
    assert cloud.client.delete(f"{RULES}/{ssh['id']}", headers=member).status_code == 202
    _nova_error(cloud.client.delete(f"{RULES}/{ssh['id']}", headers=member), 404, "itemNotFound")


def test_rule_errors(cloud: Any) -> None:
    _, member = _member(cloud, "nsg-rule-err")
    group = _group(cloud, member)

    def create(**rule: Any) -> Any:
        body = {"security_group_rule": {"parent_group_id": group["id"], **rule}}
        return cloud.client.post(RULES, json=body, headers=member)

    for bad in (
        {"ip_protocol": "tcp", "from_port": 10, "to_port": 1},
        {"ip_protocol": "tcp", "from_port": 0, "to_port": 10},
        {"ip_protocol": "icmp", "from_port": 256, "to_port": 1},
        {"ip_protocol": "gre", "from_port": 1, "to_port": 2},
        {"ip_protocol": "tcp", "from_port": "a", "to_port": 2},
        {"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "nonsense"},
        {"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "10.0.0.0/0"},
        {"ip_protocol": "tcp"},
        {},
    ):
        _nova_error(create(**bad), 400, "badRequest")
    assert create(ip_protocol="tcp", from_port=80, to_port=80).status_code == 200
    message = _nova_error(create(ip_protocol="tcp", from_port=80, to_port=80), 400, "badRequest")
    assert "already exists" in message
    missing = str(uuid.uuid4())
    _nova_error(
        create(ip_protocol="tcp", from_port=1, to_port=2, group_id=missing),
        404,
        "itemNotFound",
    )
    _nova_error(create(ip_protocol="tcp", from_port=1, to_port=2, group_id="x"), 400, "badRequest")
    body = {"security_group_rule": {"parent_group_id": missing, "ip_protocol": "tcp"}}
    _nova_error(cloud.client.post(RULES, json=body, headers=member), 404, "itemNotFound")
    body = {"security_group_rule": {"parent_group_id": "not-a-uuid", "ip_protocol": "tcp"}}
    _nova_error(cloud.client.post(RULES, json=body, headers=member), 400, "badRequest")
    _nova_error(cloud.client.post(RULES, json={}, headers=member), 400, "badRequest")


def test_projects_are_isolated_and_admin_lists_all(cloud: Any) -> None:
    a_project, alice = _member(cloud, "nsg-a")
    b_project, bob = _member(cloud, "nsg-b")
    group = _group(cloud, alice)
    bobs = cloud.client.get(SG, headers=bob).json()["security_groups"]
    assert {g["tenant_id"] for g in bobs} == {b_project}
    url = f"{SG}/{group['id']}"
    _nova_error(cloud.client.get(url, headers=bob), 404, "itemNotFound")
    _nova_error(cloud.client.delete(url, headers=bob), 404, "itemNotFound")
    body = {"security_group_rule": {"parent_group_id": group["id"], "ip_protocol": "tcp"}}
    _nova_error(cloud.client.post(RULES, json=body, headers=bob), 404, "itemNotFound")
    own = cloud.client.get(SG, headers=cloud.admin).json()["security_groups"]
    assert a_project not in {g["tenant_id"] for g in own}
    every = cloud.client.get(SG, params={"all_tenants": 1}, headers=cloud.admin).json()
    assert {a_project, b_project} <= {g["tenant_id"] for g in every["security_groups"]}


def test_gone_from_microversion_2_36(cloud: Any) -> None:
    from kumo.api.compute import microversion

    headers = {**cloud.admin, "X-OpenStack-Nova-API-Version": "2.1"}
    assert cloud.client.get(SG, headers=headers).status_code == 200
    if microversion.MAX_VERSION.at_least("2.36"):
        headers = {**cloud.admin, "X-OpenStack-Nova-API-Version": "2.36"}
        _nova_error(cloud.client.get(SG, headers=headers), 404, "itemNotFound")
        _nova_error(cloud.client.post(RULES, json={}, headers=headers), 404, "itemNotFound")
    # Until kumo speaks 2.36, the cut-off itself:
    import pytest

    from kumo.api.compute.security_group_rules import check_version
    from kumo.core.errors import NotFound
    from kumo.core.microversion import APIVersion

    check_version(APIVersion(2, 35))
    with pytest.raises(NotFound):
        check_version(APIVersion(2, 36))

"""Neutron security groups and rules: the default group, CRUD, rule validation, duplicates,
project isolation."""

from __future__ import annotations

from typing import Any

import pytest

from netapi import network, port

SG = "/network/v2.0/security-groups"
RULES = "/network/v2.0/security-group-rules"


def _error(resp: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error: dict[str, Any] = resp.json()["NeutronError"]
    assert error["message"]
    if kind:
        assert error["type"] == kind, error
    return error


def _member(cloud: Any, name: str) -> tuple[str, dict[str, str]]:
    project = cloud.project(name)
    _, token = cloud.member(f"{name}-user", project["id"])
    return project["id"], cloud.h(token)


def _group(cloud: Any, headers: dict[str, str], name: str = "web", **extra: Any) -> Any:
    resp = cloud.client.post(SG, json={"security_group": {"name": name, **extra}}, headers=headers)
    assert resp.status_code == 201, resp.text
    return resp.json()["security_group"]


def _rule(cloud: Any, headers: dict[str, str], group_id: str, **attrs: Any) -> Any:
    body = {"security_group_rule": {"security_group_id": group_id, "direction": "ingress", **attrs}}
    return cloud.client.post(RULES, json=body, headers=headers)


def test_listing_creates_the_default_group_once(cloud: Any) -> None:
    project_id, member = _member(cloud, "sg-default")
    first = cloud.client.get(SG, headers=member)
    assert first.status_code == 200
    (default,) = first.json()["security_groups"]
    assert default["name"] == "default" and default["project_id"] == project_id
    assert default["tenant_id"] == project_id and default["stateful"] is True
    rules = default["security_group_rules"]
    assert len(rules) == 4
    assert {(r["direction"], r["ethertype"]) for r in rules} == {
        (d, e) for d in ("ingress", "egress") for e in ("IPv4", "IPv6")
    }
    for rule in rules:
        assert rule["belongs_to_default_sg"] is True
        if rule["direction"] == "ingress":
            assert rule["remote_group_id"] == default["id"]
    again = cloud.client.get(SG, headers=member).json()["security_groups"]
    assert [g["id"] for g in again] == [default["id"]]
    # The rules list also shows them, and a filter narrows it.
    listed = cloud.client.get(
        RULES, params={"security_group_id": default["id"], "direction": "egress"}, headers=member
    ).json()["security_group_rules"]
    assert len(listed) == 2 and all(r["direction"] == "egress" for r in listed)


def test_default_group_keeps_its_name_and_only_admin_deletes_it(cloud: Any) -> None:
    _, member = _member(cloud, "sg-keep")
    default = cloud.client.get(SG, params={"name": "default"}, headers=member).json()[
        "security_groups"
    ][0]
    url = f"{SG}/{default['id']}"
    _error(
        cloud.client.put(url, json={"security_group": {"name": "x"}}, headers=member),
        409,
        "SecurityGroupCannotUpdateDefault",
    )
    resp = cloud.client.put(url, json={"security_group": {"description": "d2"}}, headers=member)
    assert resp.status_code == 200 and resp.json()["security_group"]["description"] == "d2"
    _error(cloud.client.delete(url, headers=member), 409, "SecurityGroupCannotRemoveDefault")
    # Nor may another group be named default.
    _error(
        cloud.client.post(SG, json={"security_group": {"name": "Default"}}, headers=member),
        409,
        "SecurityGroupDefaultAlreadyExists",
    )
    group = _group(cloud, member)
    _error(
        cloud.client.put(
            f"{SG}/{group['id']}", json={"security_group": {"name": "default"}}, headers=member
        ),
        409,
        "SecurityGroupDefaultAlreadyExists",
    )
    assert cloud.client.delete(url, headers=cloud.admin).status_code == 204


def test_group_crud_revision_and_fields(cloud: Any) -> None:
    _, member = _member(cloud, "sg-crud")
    group = _group(cloud, member, description="web tier", tags=["a", "b"])
    assert group["revision_number"] == 0 and group["tags"] == ["a", "b"]
    assert group["shared"] is False
    # A new group lets everything out and nothing in.
    assert sorted(
        (r["direction"], r["ethertype"], r["protocol"]) for r in group["security_group_rules"]
    ) == [("egress", "IPv4", None), ("egress", "IPv6", None)]
    url = f"{SG}/{group['id']}"
    resp = cloud.client.put(
        url, json={"security_group": {"name": "web2", "stateful": False}}, headers=member
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()["security_group"]
    assert updated["name"] == "web2" and updated["stateful"] is False
    assert updated["revision_number"] == 1
    # If-Match on the old revision fails.
    headers = {**member, "If-Match": "revision_number=0"}
    _error(
        cloud.client.put(url, json={"security_group": {"name": "x"}}, headers=headers),
        412,
        "RevisionNumberConstraintFailed",
    )
    shown = cloud.client.get(url, params={"fields": ["id", "name"]}, headers=member).json()
    assert shown["security_group"] == {"id": group["id"], "name": "web2"}
    _error(cloud.client.put(url, json={"security_group": {"id": "x"}}, headers=member), 400)
    _error(cloud.client.post(SG, json={"security_group": {"bogus": 1}}, headers=member), 400)
    assert cloud.client.delete(url, headers=member).status_code == 204
    _error(cloud.client.get(url, headers=member), 404, "SecurityGroupNotFound")
    _error(cloud.client.delete(url, headers=member), 404, "SecurityGroupNotFound")


def test_bulk_create_groups(cloud: Any) -> None:
    _, member = _member(cloud, "sg-bulk")
    body = {"security_groups": [{"name": "a"}, {"name": "b"}]}
    resp = cloud.client.post(SG, json=body, headers=member)
    assert resp.status_code == 201, resp.text
    assert [g["name"] for g in resp.json()["security_groups"]] == ["a", "b"]
    # All or nothing: one bad item creates none.
    body = {"security_groups": [{"name": "c"}, {"name": "default"}]}
    _error(cloud.client.post(SG, json=body, headers=member), 409)
    names = {g["name"] for g in cloud.client.get(SG, headers=member).json()["security_groups"]}
    assert names == {"default", "a", "b"}


def test_rules_as_tempest_creates_them(cloud: Any) -> None:
    _, member = _member(cloud, "sg-rules")
    group = _group(cloud, member)
    other = _group(cloud, member, "other")
    resp = _rule(
        cloud,
        member,
        group["id"],
        protocol="tcp",
        port_range_min=77,
        port_range_max=77,
        remote_group_id=None,
        remote_ip_prefix=None,
    )
    assert resp.status_code == 201, resp.text
    rule = resp.json()["security_group_rule"]
    assert rule["protocol"] == "tcp" and rule["port_range_min"] == 77
    assert rule["ethertype"] == "IPv4" and rule["belongs_to_default_sg"] is False
    assert cloud.client.get(f"{RULES}/{rule['id']}", headers=member).json() == {
        "security_group_rule": rule
    }
    for icmp_type, code in [(3, 2), (3, 0), (8, 0), (0, 0), (11, None)]:
        resp = _rule(
            cloud,
            member,
            group["id"],
            protocol="icmp",
            port_range_min=icmp_type,
            port_range_max=code,
        )
        assert resp.status_code == 201, resp.text
        created = resp.json()["security_group_rule"]
        assert (created["port_range_min"], created["port_range_max"]) == (icmp_type, code)
    by_number = _rule(cloud, member, group["id"], protocol=17).json()["security_group_rule"]
    assert by_number["protocol"] == "17"
    remote = _rule(
        cloud,
        member,
        group["id"],
        protocol="udp",
        port_range_min=50,
        port_range_max=55,
        remote_group_id=other["id"],
    ).json()["security_group_rule"]
    assert remote["remote_group_id"] == other["id"]
    prefix = _rule(
        cloud,
        member,
        group["id"],
        protocol="tcp",
        port_range_min=76,
        port_range_max=77,
        remote_ip_prefix="10.100.0.5/16",
    ).json()["security_group_rule"]
    # Kept as given; normalized_cidr is its network.
    assert prefix["remote_ip_prefix"] == "10.100.0.5/16"
    assert prefix["normalized_cidr"] == "10.100.0.0/16"
    v6 = _rule(
        cloud,
        member,
        group["id"],
        ethertype="IPv6",
        protocol="icmp",
        remote_ip_prefix="2001:db8::1",
    ).json()["security_group_rule"]
    assert v6["protocol"] == "ipv6-icmp" and v6["remote_ip_prefix"] == "2001:db8::1/128"
    shown = cloud.client.get(f"{SG}/{group['id']}", headers=member).json()["security_group"]
    assert len(shown["security_group_rules"]) == 12
    assert shown["revision_number"] == 10
    # Deleting the remote group takes the rules naming it; deleting the group, its rules.
    assert cloud.client.delete(f"{SG}/{other['id']}", headers=member).status_code == 204
    _error(cloud.client.get(f"{RULES}/{remote['id']}", headers=member), 404)
    assert cloud.client.delete(f"{SG}/{group['id']}", headers=member).status_code == 204
    listed = cloud.client.get(RULES, headers=member).json()["security_group_rules"]
    assert rule["id"] not in {r["id"] for r in listed}


BAD_RULES: list[tuple[dict[str, Any], int, str | None]] = [
    ({"direction": "sideways"}, 400, None),
    ({"direction": None}, 400, None),
    ({"ethertype": "IPv5"}, 400, None),
    ({"protocol": "bogus"}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol"),
    ({"port_range_min": 22, "port_range_max": 22}, 400, "SecurityGroupProtocolRequiredWithPorts"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 5}, 400, None),
    (
        {"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
        400,
        "SecurityGroupInvalidPortRange",
    ),
    (
        {"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536},
        400,
        "SecurityGroupInvalidPortValue",
    ),
    ({"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue"),
    ({"protocol": "icmp", "port_range_max": 3}, 400, "SecurityGroupMissingIcmpType"),
    (
        {"protocol": "gre", "port_range_min": 1, "port_range_max": 2},
        400,
        "SecurityGroupInvalidProtocolForPort",
    ),
    ({"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol"),
    ({"remote_ip_prefix": "::/0"}, 400, "SecurityGroupRuleParameterConflict"),
    ({"remote_ip_prefix": "10.0.0.0/33"}, 400, "InvalidCIDR"),
    (
        {"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "SELF"},
        400,
        "SecurityGroupRemoteGroupAndRemoteIpPrefix",
    ),
    ({"remote_group_id": "no-such-group"}, 404, "SecurityGroupNotFound"),
    ({"remote_address_group_id": "x"}, 400, None),
    ({"bogus": 1}, 400, None),
]


@pytest.mark.parametrize("attrs,status,kind", BAD_RULES)
def test_bad_rules_are_refused(cloud: Any, attrs: dict[str, Any], status: int, kind: Any) -> None:
    group = _group(cloud, cloud.admin)
    attrs = {k: (group["id"] if v == "SELF" else v) for k, v in attrs.items()}
    _error(_rule(cloud, cloud.admin, group["id"], **attrs), status, kind)
    shown = cloud.client.get(f"{SG}/{group['id']}", headers=cloud.admin).json()
    assert len(shown["security_group"]["security_group_rules"]) == 2


def test_duplicate_rules_are_409_naming_the_existing_rule(cloud: Any) -> None:
    _, member = _member(cloud, "sg-dup")
    group = _group(cloud, member)
    first = _rule(
        cloud,
        member,
        group["id"],
        protocol="tcp",
        port_range_min=22,
        port_range_max=22,
        remote_ip_prefix="0.0.0.0/0",
    ).json()["security_group_rule"]
    # The same rule spelled differently: protocol by number, no prefix meaning everywhere.
    error = _error(
        _rule(cloud, member, group["id"], protocol="6", port_range_min=22, port_range_max=22),
        409,
        "SecurityGroupRuleExists",
    )
    assert first["id"] in error["message"]
    same_net = _rule(cloud, member, group["id"], protocol="udp", remote_ip_prefix="10.0.0.1/24")
    assert same_net.status_code == 201
    _error(
        _rule(cloud, member, group["id"], protocol="udp", remote_ip_prefix="10.0.0.0/24"),
        409,
        "SecurityGroupRuleExists",
    )
    twice = {"security_group_id": group["id"], "direction": "egress", "protocol": "sctp"}
    _error(
        cloud.client.post(RULES, json={"security_group_rules": [twice, twice]}, headers=member),
        409,
        "DuplicateSecurityGroupRuleInPost",
    )
    bulk = [twice, {**twice, "protocol": "dccp"}]
    resp = cloud.client.post(RULES, json={"security_group_rules": bulk}, headers=member)
    assert resp.status_code == 201 and len(resp.json()["security_group_rules"]) == 2


def test_rule_description_update_and_delete(cloud: Any) -> None:
    _, member = _member(cloud, "sg-rule-upd")
    group = _group(cloud, member)
    rule = _rule(cloud, member, group["id"], protocol="any").json()["security_group_rule"]
    assert rule["protocol"] is None
    url = f"{RULES}/{rule['id']}"
    resp = cloud.client.put(url, json={"security_group_rule": {"description": "d"}}, headers=member)
    assert resp.status_code == 200 and resp.json()["security_group_rule"]["description"] == "d"
    _error(
        cloud.client.put(url, json={"security_group_rule": {"protocol": "tcp"}}, headers=member),
        400,
    )
    assert cloud.client.delete(url, headers=member).status_code == 204
    _error(cloud.client.delete(url, headers=member), 404, "SecurityGroupRuleNotFound")


def test_projects_are_isolated(cloud: Any) -> None:
    a_project, alice = _member(cloud, "sg-a")
    b_project, bob = _member(cloud, "sg-b")
    group = _group(cloud, alice)
    rule = _rule(cloud, alice, group["id"], protocol="tcp", port_range_min=1, port_range_max=9)
    rule_id = rule.json()["security_group_rule"]["id"]
    bobs = cloud.client.get(SG, headers=bob).json()["security_groups"]
    assert {g["project_id"] for g in bobs} == {b_project}
    bob_rules = cloud.client.get(RULES, headers=bob).json()["security_group_rules"]
    assert rule_id not in {r["id"] for r in bob_rules}
    for resp in (
        cloud.client.get(f"{SG}/{group['id']}", headers=bob),
        cloud.client.put(
            f"{SG}/{group['id']}", json={"security_group": {"name": "x"}}, headers=bob
        ),
        cloud.client.delete(f"{SG}/{group['id']}", headers=bob),
        cloud.client.get(f"{RULES}/{rule_id}", headers=bob),
        cloud.client.delete(f"{RULES}/{rule_id}", headers=bob),
        _rule(cloud, bob, group["id"], protocol="udp"),
    ):
        _error(resp, 404)
    # Bob cannot name Alice's group as a remote group either.
    bob_group = _group(cloud, bob)
    _error(_rule(cloud, bob, bob_group["id"], remote_group_id=group["id"]), 404)
    # Nor create in Alice's project.
    _error(
        cloud.client.post(
            SG, json={"security_group": {"name": "x", "project_id": a_project}}, headers=bob
        ),
        400,
    )
    # The admin sees both, and may create for a project (its default group comes first).
    all_groups = cloud.client.get(SG, headers=cloud.admin).json()["security_groups"]
    assert {a_project, b_project} <= {g["project_id"] for g in all_groups}
    c_project = cloud.project("sg-c")["id"]
    made = _group(cloud, cloud.admin, "for-c", project_id=c_project)
    assert made["project_id"] == c_project
    c_groups = cloud.client.get(SG, params={"project_id": c_project}, headers=cloud.admin).json()
    assert {g["name"] for g in c_groups["security_groups"]} == {"default", "for-c"}


def test_group_in_use_by_a_port_cannot_go(cloud: Any) -> None:
    _, member = _member(cloud, "sg-inuse")
    group = _group(cloud, member)
    net = network(cloud, member)
    used = port(cloud, member, net["id"], security_groups=[group["id"]])
    assert used["security_groups"] == [group["id"]]
    _error(cloud.client.delete(f"{SG}/{group['id']}", headers=member), 409, "SecurityGroupInUse")
    _error(
        cloud.client.put(
            f"{SG}/{group['id']}", json={"security_group": {"stateful": False}}, headers=member
        ),
        409,
        "SecurityGroupInUse",
    )
    assert cloud.client.get(f"{SG}/{group['id']}", headers=member).status_code == 200
    # Once no port uses it, it may go.
    resp = cloud.client.put(
        f"/network/v2.0/ports/{used['id']}", json={"port": {"security_groups": []}}, headers=member
    )
    assert resp.status_code == 200, resp.text
    assert cloud.client.delete(f"{SG}/{group['id']}", headers=member).status_code == 204


def test_group_and_rule_quotas(cloud: Any) -> None:
    from kumo.core.network import quotas

    project_id, member = _member(cloud, "sg-quota")
    with cloud.db.session() as session:
        quotas.update(session, project_id, {"security_group": 2, "security_group_rule": 7})
    group = _group(cloud, member)  # the default group is the first
    _error(
        cloud.client.post(SG, json={"security_group": {"name": "x"}}, headers=member),
        409,
        "OverQuota",
    )
    # Six rules are in use (four default, two egress of the new group): one more fits, two
    # do not (all or nothing).
    bulk = [
        {"security_group_id": group["id"], "direction": "ingress", "protocol": p}
        for p in ("tcp", "udp")
    ]
    _error(
        cloud.client.post(RULES, json={"security_group_rules": bulk}, headers=member),
        409,
        "OverQuota",
    )
    assert _rule(cloud, member, group["id"], protocol="tcp").status_code == 201
    _error(_rule(cloud, member, group["id"], protocol="udp"), 409, "OverQuota")


def test_if_match_guards_delete(cloud: Any) -> None:
    _, member = _member(cloud, "sg-ifmatch")
    group = _group(cloud, member)
    url = f"{SG}/{group['id']}"
    stale = {**member, "If-Match": "revision_number=7"}
    _error(cloud.client.delete(url, headers=stale), 412, "RevisionNumberConstraintFailed")
    fresh = {**member, "If-Match": "revision_number=0"}
    assert cloud.client.delete(url, headers=fresh).status_code == 204

"""Neutron networks: CRUD, bulk, provider segments, sharing and external visibility,
policy, deletion rules, tags and list semantics."""

from __future__ import annotations

from typing import Any

from netapi import V2, error, network, port, subnet, tenant


def test_create_show_update_delete(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h, name="n1", description="first")
    assert net["status"] == "ACTIVE" and net["admin_state_up"] is True
    assert net["project_id"] == net["tenant_id"]
    assert net["subnets"] == [] and net["shared"] is False and net["router:external"] is False
    assert net["mtu"] == 1450  # VXLAN by default: 1500 - 50
    assert net["revision_number"] == 0 and net["created_at"].endswith("Z")
    assert "provider:network_type" not in net  # admins only
    got = cloud.client.get(f"{V2}/networks/{net['id']}", headers=h).json()["network"]
    assert got == net
    resp = cloud.client.put(
        f"{V2}/networks/{net['id']}",
        json={"network": {"name": "n2", "description": "d"}},
        headers=h,
    )
    assert resp.status_code == 200
    updated = resp.json()["network"]
    assert updated["name"] == "n2" and updated["description"] == "d"
    assert updated["revision_number"] == 1
    fields = cloud.client.get(f"{V2}/networks/{net['id']}?fields=id&fields=name", headers=h)
    assert fields.json()["network"] == {"id": net["id"], "name": "n2"}
    assert cloud.client.delete(f"{V2}/networks/{net['id']}", headers=h).status_code == 204
    error(cloud.client.get(f"{V2}/networks/{net['id']}", headers=h), 404, "NetworkNotFound")


def test_admin_sees_provider_attributes_and_segments_are_allocated(cloud: Any) -> None:
    first = network(cloud, cloud.admin)
    second = network(cloud, cloud.admin)
    assert first["provider:network_type"] == "vxlan"
    assert first["provider:physical_network"] is None
    assert {first["provider:segmentation_id"], second["provider:segmentation_id"]} == {1, 2}
    vlan = network(
        cloud,
        cloud.admin,
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    )
    assert vlan["provider:segmentation_id"] == 100 and vlan["mtu"] == 1500
    taken = cloud.client.post(
        f"{V2}/networks",
        json={
            "network": {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 100,
            }
        },
        headers=cloud.admin,
    )
    error(taken, 409, "VlanIdInUse")
    flat = network(
        cloud,
        cloud.admin,
        **{"provider:network_type": "flat", "provider:physical_network": "public"},
    )
    assert flat["provider:segmentation_id"] is None
    again = cloud.client.post(
        f"{V2}/networks",
        json={"network": {"provider:network_type": "flat", "provider:physical_network": "public"}},
        headers=cloud.admin,
    )
    error(again, 409, "FlatNetworkInUse")
    for bad in (
        {"provider:network_type": "gre"},
        {"provider:network_type": "flat", "provider:physical_network": "nowhere"},
        {"provider:network_type": "vxlan", "provider:segmentation_id": 2**24},
        {"provider:network_type": "local", "provider:segmentation_id": 5},
    ):
        error(cloud.client.post(f"{V2}/networks", json={"network": bad}, headers=cloud.admin), 400)


def test_members_may_not_set_admin_attributes(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    for attrs in (
        {"shared": True},
        {"router:external": True},
        {"provider:network_type": "vxlan"},
    ):
        resp = cloud.client.post(f"{V2}/networks", json={"network": attrs}, headers=h)
        error(resp, 403)
    other = cloud.project("beta")
    resp = cloud.client.post(
        f"{V2}/networks", json={"network": {"project_id": other["id"]}}, headers=h
    )
    error(resp, 400)
    # A value equal to the default is not "setting" it.
    assert network(cloud, h, shared=False)["shared"] is False


def test_bad_input_is_400(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    for body in (
        {"network": {"bogus": 1}},
        {"network": {"admin_state_up": "maybe"}},
        {"network": {"name": 5}},
        {"network": {"mtu": 20000}},
        {"network": "x"},
        {"networks": []},
        {},
    ):
        error(cloud.client.post(f"{V2}/networks", json=body, headers=h), 400)


def test_bulk_create_is_all_or_nothing(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    resp = cloud.client.post(
        f"{V2}/networks", json={"networks": [{"name": "a"}, {"name": "b"}]}, headers=h
    )
    assert resp.status_code == 201
    assert [n["name"] for n in resp.json()["networks"]] == ["a", "b"]
    bad = cloud.client.post(
        f"{V2}/networks", json={"networks": [{"name": "c"}, {"bogus": True}]}, headers=h
    )
    error(bad, 400)
    names = {n["name"] for n in cloud.client.get(f"{V2}/networks", headers=h).json()["networks"]}
    assert names == {"a", "b"}


def test_isolation_shared_and_external_visibility(cloud: Any) -> None:
    _, ha = tenant(cloud, "alpha")
    _, hb = tenant(cloud, "beta")
    private = network(cloud, ha, name="private")
    shared = network(cloud, cloud.admin, name="shared", shared=True)
    external = network(cloud, cloud.admin, name="ext", **{"router:external": True})
    admin_only = network(cloud, cloud.admin, name="admin-only")
    seen = {n["id"] for n in cloud.client.get(f"{V2}/networks", headers=hb).json()["networks"]}
    assert seen == {shared["id"], external["id"]}
    error(cloud.client.get(f"{V2}/networks/{private['id']}", headers=hb), 404, "NetworkNotFound")
    error(cloud.client.get(f"{V2}/networks/{admin_only['id']}", headers=hb), 404)
    # Visible but not editable.
    resp = cloud.client.put(
        f"{V2}/networks/{shared['id']}", json={"network": {"name": "mine"}}, headers=hb
    )
    error(resp, 403)
    error(cloud.client.delete(f"{V2}/networks/{shared['id']}", headers=hb), 403)
    error(cloud.client.delete(f"{V2}/networks/{private['id']}", headers=hb), 404)
    # A port on the shared network is allowed, one on the external network is not.
    subnet(cloud, cloud.admin, shared["id"])
    subnet(cloud, cloud.admin, external["id"], cidr="172.24.4.0/24")
    assert port(cloud, hb, shared["id"])["fixed_ips"]
    resp = cloud.client.post(
        f"{V2}/ports", json={"port": {"network_id": external["id"]}}, headers=hb
    )
    error(resp, 403)
    external_filter = cloud.client.get(f"{V2}/networks?router:external=true", headers=hb)
    assert [n["id"] for n in external_filter.json()["networks"]] == [external["id"]]


def test_delete_with_ports_is_409_and_dhcp_ports_go(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    sub = subnet(cloud, h, net["id"])
    p = port(cloud, h, net["id"])
    dhcp = port(cloud, cloud.admin, net["id"], device_owner="network:dhcp")
    error(cloud.client.delete(f"{V2}/networks/{net['id']}", headers=h), 409, "NetworkInUse")
    assert cloud.client.delete(f"{V2}/ports/{p['id']}", headers=h).status_code == 204
    assert cloud.client.delete(f"{V2}/networks/{net['id']}", headers=h).status_code == 204
    error(cloud.client.get(f"{V2}/subnets/{sub['id']}", headers=h), 404, "SubnetNotFound")
    error(cloud.client.get(f"{V2}/ports/{dhcp['id']}", headers=cloud.admin), 404)


def test_unsharing_a_network_in_use_by_others_is_409(cloud: Any) -> None:
    _, hb = tenant(cloud, "beta")
    shared = network(cloud, cloud.admin, shared=True)
    subnet(cloud, cloud.admin, shared["id"])
    port(cloud, hb, shared["id"])
    resp = cloud.client.put(
        f"{V2}/networks/{shared['id']}", json={"network": {"shared": False}}, headers=cloud.admin
    )
    error(resp, 409, "InvalidSharedSetting")


def test_subnets_listed_in_network_view_and_revision_if_match(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    sub = subnet(cloud, h, net["id"])
    got = cloud.client.get(f"{V2}/networks/{net['id']}", headers=h).json()["network"]
    assert got["subnets"] == [sub["id"]]
    stale = {**h, "If-Match": "revision_number=7"}
    resp = cloud.client.put(
        f"{V2}/networks/{net['id']}", json={"network": {"name": "x"}}, headers=stale
    )
    error(resp, 412)
    fresh = {**h, "If-Match": f"revision_number={got['revision_number']}"}
    resp = cloud.client.put(
        f"{V2}/networks/{net['id']}", json={"network": {"name": "x"}}, headers=fresh
    )
    assert resp.status_code == 200


def test_list_filters_sort_page_and_tags(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    ids = [network(cloud, h, name=f"n{i}")["id"] for i in range(3)]
    resp = cloud.client.get(f"{V2}/networks?name=n1", headers=h)
    assert [n["id"] for n in resp.json()["networks"]] == [ids[1]]
    resp = cloud.client.get(f"{V2}/networks?sort_key=name&sort_dir=desc", headers=h)
    assert [n["name"] for n in resp.json()["networks"]] == ["n2", "n1", "n0"]
    page = cloud.client.get(f"{V2}/networks?limit=2&sort_key=name", headers=h).json()
    assert len(page["networks"]) == 2 and page["networks_links"][0]["rel"] == "next"
    tagged = cloud.client.put(
        f"{V2}/networks/{ids[0]}/tags", json={"tags": ["red", "blue"]}, headers=h
    )
    assert tagged.status_code == 200 and tagged.json()["tags"] == ["blue", "red"]
    assert cloud.client.put(f"{V2}/networks/{ids[1]}/tags/red", headers=h).status_code == 201
    resp = cloud.client.get(f"{V2}/networks?tags=red", headers=h)
    assert {n["id"] for n in resp.json()["networks"]} == {ids[0], ids[1]}
    resp = cloud.client.get(f"{V2}/networks?tags=red,blue", headers=h)
    assert [n["id"] for n in resp.json()["networks"]] == [ids[0]]
    assert cloud.client.get(f"{V2}/networks/{ids[0]}/tags/blue", headers=h).status_code == 204
    error(cloud.client.get(f"{V2}/networks/{ids[0]}/tags/green", headers=h), 404, "TagNotFound")
    assert cloud.client.delete(f"{V2}/networks/{ids[0]}/tags/blue", headers=h).status_code == 204
    assert cloud.client.delete(f"{V2}/networks/{ids[0]}/tags", headers=h).status_code == 204
    assert cloud.client.get(f"{V2}/networks/{ids[0]}/tags", headers=h).json() == {"tags": []}
    got = cloud.client.get(f"{V2}/networks/{ids[0]}", headers=h).json()["network"]
    assert got["revision_number"] == 3  # every tag change counts
    created = network(cloud, h, tags=["t1"])
    assert created["tags"] == ["t1"]
    _, hb = tenant(cloud, "beta")
    error(cloud.client.put(f"{V2}/networks/{ids[0]}/tags/x", headers=hb), 404)
    error(cloud.client.put(f"{V2}/things/{ids[0]}/tags/x", headers=h), 404)


def test_extensions_and_availability_zones(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    exts = cloud.client.get(f"{V2}/extensions", headers=h).json()["extensions"]
    aliases = {e["alias"] for e in exts}
    assert {"external-net", "provider", "binding", "quotas", "standard-attr-tag"} <= aliases
    assert "l3_agent_scheduler" not in aliases
    one = cloud.client.get(f"{V2}/extensions/provider", headers=h).json()["extension"]
    assert set(one) == {"alias", "name", "description", "updated", "links"}
    error(cloud.client.get(f"{V2}/extensions/dvr", headers=h), 404)
    zones = cloud.client.get(f"{V2}/availability_zones", headers=h).json()["availability_zones"]
    assert {z["resource"] for z in zones} == {"network", "router"}


def test_agents_are_for_admins(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    assert cloud.client.get(f"{V2}/agents", headers=h).json() == {"agents": []}
    assert cloud.client.get(f"{V2}/agents", headers=cloud.admin).status_code == 200
    error(cloud.client.get(f"{V2}/agents/nope", headers=cloud.admin), 404, "AgentNotFound")

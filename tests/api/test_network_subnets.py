"""Neutron subnets and subnet pools: defaults, validation of CIDRs, gateways, pools, DNS and
routes, updates, deletion rules, pools carving subnets, isolation."""

from __future__ import annotations

from typing import Any

import pytest

from netapi import V2, create, error, network, port, subnet, tenant


def _post(cloud: Any, h: dict[str, str], **attrs: Any) -> Any:
    return cloud.client.post(f"{V2}/subnets", json={"subnet": attrs}, headers=h)


def test_defaults_and_crud(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    sub = subnet(cloud, h, net["id"], name="s1")
    assert sub["gateway_ip"] == "10.0.0.1" and sub["enable_dhcp"] is True
    assert sub["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.254"}]
    assert sub["dns_nameservers"] == [] and sub["host_routes"] == []
    assert sub["ip_version"] == 4 and sub["subnetpool_id"] is None
    assert cloud.client.get(f"{V2}/subnets/{sub['id']}", headers=h).json()["subnet"] == sub
    listed = cloud.client.get(f"{V2}/subnets?network_id={net['id']}", headers=h).json()
    assert [s["id"] for s in listed["subnets"]] == [sub["id"]]
    resp = cloud.client.put(
        f"{V2}/subnets/{sub['id']}",
        json={
            "subnet": {
                "name": "s2",
                "gateway_ip": "10.0.0.254",
                "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"}],
                "dns_nameservers": ["8.8.8.8", "1.1.1.1"],
                "host_routes": [{"destination": "10.20.0.0/24", "nexthop": "10.0.0.5"}],
                "enable_dhcp": False,
            }
        },
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()["subnet"]
    assert updated["gateway_ip"] == "10.0.0.254" and updated["enable_dhcp"] is False
    assert updated["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]
    assert updated["revision_number"] == 1
    resp = cloud.client.put(
        f"{V2}/subnets/{sub['id']}", json={"subnet": {"gateway_ip": None}}, headers=h
    )
    assert resp.json()["subnet"]["gateway_ip"] is None
    error(
        cloud.client.put(
            f"{V2}/subnets/{sub['id']}", json={"subnet": {"cidr": "10.1.0.0/24"}}, headers=h
        ),
        400,
    )
    assert cloud.client.delete(f"{V2}/subnets/{sub['id']}", headers=h).status_code == 204
    error(cloud.client.get(f"{V2}/subnets/{sub['id']}", headers=h), 404, "SubnetNotFound")


def test_no_gateway_and_explicit_pools(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    sub = subnet(cloud, h, net["id"], gateway_ip=None)
    assert sub["gateway_ip"] is None
    assert sub["allocation_pools"] == [{"start": "10.0.0.1", "end": "10.0.0.254"}]
    other = subnet(
        cloud,
        h,
        net["id"],
        cidr="10.1.0.0/24",
        gateway_ip="10.1.0.100",
        allocation_pools=[
            {"start": "10.1.0.50", "end": "10.1.0.60"},
            {"start": "10.1.0.2", "end": "10.1.0.10"},
        ],
    )
    assert other["allocation_pools"][0] == {"start": "10.1.0.2", "end": "10.1.0.10"}
    middle = subnet(cloud, h, net["id"], cidr="10.2.0.0/24", gateway_ip="10.2.0.100")
    assert middle["allocation_pools"] == [
        {"start": "10.2.0.1", "end": "10.2.0.99"},
        {"start": "10.2.0.101", "end": "10.2.0.254"},
    ]


@pytest.mark.parametrize(
    ("attrs", "status", "kind"),
    [
        ({"cidr": "10.0.0.1/24"}, 400, None),  # host bits set
        ({"cidr": "10.0.0.0/33"}, 400, None),
        ({"cidr": "nonsense"}, 400, None),
        ({"cidr": "fd00::/64"}, 400, None),  # ip_version 4 given
        ({"ip_version": 5}, 400, None),
        ({"gateway_ip": "10.9.0.1"}, 400, None),
        ({"gateway_ip": "10.0.0.255"}, 400, None),
        ({"allocation_pools": [{"start": "10.0.0.10", "end": "10.0.1.10"}]}, 400, None),
        (
            {
                "allocation_pools": [
                    {"start": "10.0.0.10", "end": "10.0.0.20"},
                    {"start": "10.0.0.15", "end": "10.0.0.30"},
                ]
            },
            400,
            "OverlappingAllocationPools",
        ),
        ({"allocation_pools": [{"start": "10.0.0.20", "end": "10.0.0.10"}]}, 400, None),
        (
            {
                "gateway_ip": "10.0.0.15",
                "allocation_pools": [{"start": "10.0.0.10", "end": "10.0.0.20"}],
            },
            409,
            "GatewayConflictWithAllocationPools",
        ),
        ({"dns_nameservers": ["8.8.8.8", "8.8.8.8"]}, 400, None),
        ({"dns_nameservers": ["not-an-ip"]}, 400, None),
        ({"host_routes": [{"destination": "10.5.0.0/24"}]}, 400, None),
        ({"ipv6_address_mode": "slaac"}, 400, None),
        ({"bogus": 1}, 400, None),
    ],
)
def test_bad_subnets(cloud: Any, attrs: dict[str, Any], status: int, kind: str | None) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    body = {"network_id": net["id"], "cidr": "10.0.0.0/24", "ip_version": 4, **attrs}
    error(_post(cloud, h, **body), status, kind)


def test_overlap_missing_network_and_foreign_network(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    _, hb = tenant(cloud, "beta")
    net = network(cloud, h)
    subnet(cloud, h, net["id"], cidr="10.0.0.0/16")
    resp = _post(cloud, h, network_id=net["id"], cidr="10.0.5.0/24", ip_version=4)
    assert "overlaps with another subnet" in error(resp, 400)["message"]
    error(_post(cloud, h, cidr="10.0.0.0/24", ip_version=4), 400)
    error(_post(cloud, h, network_id="nope", cidr="10.0.0.0/24", ip_version=4), 404)
    error(_post(cloud, hb, network_id=net["id"], cidr="10.9.0.0/24", ip_version=4), 404)
    shared = network(cloud, cloud.admin, shared=True)
    error(_post(cloud, hb, network_id=shared["id"], cidr="10.9.0.0/24", ip_version=4), 403)


def test_ipv6_subnet_and_slaac_port(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    sub = subnet(
        cloud, h, net["id"], cidr="fd00:1::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac"
    )
    assert sub["gateway_ip"] == "fd00:1::1" and sub["ip_version"] == 6
    assert sub["allocation_pools"][0]["start"] == "fd00:1::2"
    p = port(cloud, h, net["id"], mac_address="fa:16:3e:00:00:01")
    assert p["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "fd00:1::f816:3eff:fe00:1"}]


def test_delete_subnet_in_use_is_409(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    sub = subnet(cloud, h, net["id"])
    p = port(cloud, h, net["id"])
    dhcp = port(cloud, cloud.admin, net["id"], device_owner="network:dhcp")
    error(cloud.client.delete(f"{V2}/subnets/{sub['id']}", headers=h), 409, "SubnetInUse")
    assert cloud.client.delete(f"{V2}/ports/{p['id']}", headers=h).status_code == 204
    assert cloud.client.delete(f"{V2}/subnets/{sub['id']}", headers=h).status_code == 204
    left = cloud.client.get(f"{V2}/ports/{dhcp['id']}", headers=cloud.admin).json()["port"]
    assert left["fixed_ips"] == []


def test_bulk_subnets_all_or_nothing(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    good = {"network_id": net["id"], "ip_version": 4}
    resp = cloud.client.post(
        f"{V2}/subnets",
        json={"subnets": [{**good, "cidr": "10.0.0.0/24"}, {**good, "cidr": "10.0.0.0/25"}]},
        headers=h,
    )
    error(resp, 400)
    assert cloud.client.get(f"{V2}/subnets", headers=h).json()["subnets"] == []
    resp = cloud.client.post(
        f"{V2}/subnets",
        json={"subnets": [{**good, "cidr": "10.0.0.0/24"}, {**good, "cidr": "10.0.1.0/24"}]},
        headers=h,
    )
    assert resp.status_code == 201 and len(resp.json()["subnets"]) == 2


def test_subnet_visibility(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    _, hb = tenant(cloud, "beta")
    sub = subnet(cloud, h, network(cloud, h)["id"])
    assert cloud.client.get(f"{V2}/subnets", headers=hb).json()["subnets"] == []
    error(cloud.client.get(f"{V2}/subnets/{sub['id']}", headers=hb), 404)
    error(cloud.client.delete(f"{V2}/subnets/{sub['id']}", headers=hb), 404)
    shared = network(cloud, cloud.admin, shared=True)
    shared_sub = subnet(cloud, cloud.admin, shared["id"], cidr="10.5.0.0/24")
    assert cloud.client.get(f"{V2}/subnets/{shared_sub['id']}", headers=hb).status_code == 200
    resp = cloud.client.put(
        f"{V2}/subnets/{shared_sub['id']}", json={"subnet": {"name": "x"}}, headers=hb
    )
    error(resp, 403)


def test_subnetpool_crud_and_carving(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    pool = create(cloud, h, "subnetpool", name="p", prefixes=["10.10.0.0/16"], default_prefixlen=24)
    assert pool["ip_version"] == 4 and pool["min_prefixlen"] == 8 and pool["max_prefixlen"] == 32
    assert pool["default_prefixlen"] == 24
    net = network(cloud, h)
    first = create(cloud, h, "subnet", network_id=net["id"], ip_version=4, subnetpool_id=pool["id"])
    second = create(
        cloud,
        h,
        "subnet",
        network_id=net["id"],
        ip_version=4,
        subnetpool_id=pool["id"],
        prefixlen=26,
    )
    assert first["cidr"] == "10.10.0.0/24" and first["subnetpool_id"] == pool["id"]
    assert second["cidr"] == "10.10.1.0/26"
    outside = _post(
        cloud, h, network_id=net["id"], ip_version=4, subnetpool_id=pool["id"], cidr="10.99.0.0/24"
    )
    error(outside, 400)
    error(cloud.client.delete(f"{V2}/subnetpools/{pool['id']}", headers=h), 409, "SubnetPoolInUse")
    resp = cloud.client.put(
        f"{V2}/subnetpools/{pool['id']}",
        json={"subnetpool": {"name": "p2", "prefixes": ["10.10.0.0/16", "10.20.0.0/16"]}},
        headers=h,
    )
    assert resp.status_code == 200 and resp.json()["subnetpool"]["name"] == "p2"
    assert resp.json()["subnetpool"]["prefixes"] == ["10.10.0.0/16", "10.20.0.0/16"]
    shrink = cloud.client.put(
        f"{V2}/subnetpools/{pool['id']}",
        json={"subnetpool": {"prefixes": ["10.20.0.0/16"]}},
        headers=h,
    )
    error(shrink, 400)
    _, hb = tenant(cloud, "beta")
    error(cloud.client.get(f"{V2}/subnetpools/{pool['id']}", headers=hb), 404, "SubnetPoolNotFound")
    for sub in (first, second):
        assert cloud.client.delete(f"{V2}/subnets/{sub['id']}", headers=h).status_code == 204
    assert cloud.client.delete(f"{V2}/subnetpools/{pool['id']}", headers=h).status_code == 204
    error(cloud.client.get(f"{V2}/subnetpools/{pool['id']}", headers=h), 404)


def test_default_subnetpool_and_bad_pools(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    bad = cloud.client.post(
        f"{V2}/subnetpools",
        json={"subnetpool": {"name": "x", "is_default": True, "prefixes": ["10.0.0.0/8"]}},
        headers=h,
    )
    error(bad, 403)
    for attrs in (
        {"prefixes": []},
        {"prefixes": ["10.0.0.0/8", "fd00::/8"]},
        {"prefixes": ["10.0.0.1/8"]},
        {"prefixes": ["10.0.0.0/8"], "min_prefixlen": 24, "default_prefixlen": 16},
    ):
        resp = cloud.client.post(f"{V2}/subnetpools", json={"subnetpool": attrs}, headers=h)
        error(resp, 400)
    pool = create(
        cloud,
        cloud.admin,
        "subnetpool",
        prefixes=["10.30.0.0/16"],
        is_default=True,
        shared=True,
        default_prefixlen=28,
    )
    net = network(cloud, h)
    sub = create(
        cloud, h, "subnet", network_id=net["id"], ip_version=4, use_default_subnetpool=True
    )
    assert sub["subnetpool_id"] == pool["id"] and sub["cidr"] == "10.30.0.0/28"
    error(_post(cloud, h, network_id=net["id"], ip_version=6, use_default_subnetpool=True), 400)


def test_slaac_needs_a_64(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h)
    resp = _post(
        cloud, h, network_id=net["id"], cidr="fd00::/80", ip_version=6, ipv6_address_mode="slaac"
    )
    error(resp, 400)


def test_network_ip_availability(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net = network(cloud, h, name="counted")
    sub = subnet(cloud, h, net["id"], cidr="10.0.0.0/28")  # pool .2-.14: 13 addresses
    port(cloud, h, net["id"])
    port(cloud, h, net["id"])
    error(cloud.client.get(f"{V2}/network-ip-availabilities", headers=h), 403)
    url = f"{V2}/network-ip-availabilities/{net['id']}"
    got = cloud.client.get(url, headers=cloud.admin).json()["network_ip_availability"]
    assert got["network_name"] == "counted"
    assert (got["total_ips"], got["used_ips"]) == (13, 2)
    assert got["subnet_ip_availability"][0]["subnet_id"] == sub["id"]
    listed = cloud.client.get(
        f"{V2}/network-ip-availabilities?ip_version=4&network_name=counted", headers=cloud.admin
    ).json()["network_ip_availabilities"]
    assert [x["network_id"] for x in listed] == [net["id"]]
    error(cloud.client.get(f"{V2}/network-ip-availabilities/nope", headers=cloud.admin), 404)

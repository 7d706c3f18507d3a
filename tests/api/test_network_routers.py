"""Neutron routers: CRUD, the external gateway (ext-gw-mode), interfaces by subnet and by
port, extra routes, host placement, project isolation and quotas."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from kumo.db import models as m
from kumo.db.types import utcnow

from netapi import V2, error, network, port, subnet, tenant

ROUTERS = f"{V2}/routers"


def _external(cloud: Any, cidr: str = "203.0.113.0/24") -> tuple[dict[str, Any], dict[str, Any]]:
    net = network(cloud, cloud.admin, name="public", **{"router:external": True})
    return net, subnet(cloud, cloud.admin, net["id"], cidr)


def _router(cloud: Any, headers: dict[str, str], **attrs: Any) -> dict[str, Any]:
    resp = cloud.client.post(ROUTERS, json={"router": {"name": "r", **attrs}}, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json()["router"])


def _put(cloud: Any, headers: dict[str, str], router_id: str, action: str, **body: Any) -> Any:
    return cloud.client.put(f"{ROUTERS}/{router_id}/{action}", json=body, headers=headers)


def _update(cloud: Any, headers: dict[str, str], router_id: str, **attrs: Any) -> Any:
    return cloud.client.put(f"{ROUTERS}/{router_id}", json={"router": attrs}, headers=headers)


def _ports_of(cloud: Any, device_id: str) -> list[dict[str, Any]]:
    resp = cloud.client.get(f"{V2}/ports", params={"device_id": device_id}, headers=cloud.admin)
    return list(resp.json()["ports"])


def test_router_crud_and_gateway(cloud: Any) -> None:
    project_id, member = tenant(cloud, "rt-crud")
    public, public_subnet = _external(cloud)
    router = _router(
        cloud, member, admin_state_up=False, external_gateway_info={"network_id": public["id"]}
    )
    assert router["admin_state_up"] is False and router["status"] == "ACTIVE"
    assert router["project_id"] == router["tenant_id"] == project_id
    assert (router["distributed"], router["ha"], router["flavor_id"]) == (False, False, None)
    assert router["routes"] == [] and router["revision_number"] == 0
    gateway = router["external_gateway_info"]
    assert gateway["network_id"] == public["id"] and gateway["enable_snat"] is True
    (fixed,) = gateway["external_fixed_ips"]
    assert fixed["subnet_id"] == public_subnet["id"]
    assert fixed["ip_address"].startswith("203.0.113.")
    (gw_port,) = _ports_of(cloud, router["id"])
    assert gw_port["device_owner"] == "network:router_gateway" and gw_port["project_id"] == ""
    # Only admins choose the SNAT mode or the gateway's addresses.
    error(
        _update(
            cloud,
            member,
            router["id"],
            external_gateway_info={"network_id": public["id"], "enable_snat": False},
        ),
        403,
    )
    resp = _update(
        cloud,
        cloud.admin,
        router["id"],
        external_gateway_info={
            "network_id": public["id"],
            "enable_snat": False,
            "external_fixed_ips": [{"ip_address": "203.0.113.77"}],
        },
    )
    assert resp.status_code == 200, resp.text
    gateway = resp.json()["router"]["external_gateway_info"]
    assert gateway["enable_snat"] is False
    assert gateway["external_fixed_ips"][0]["ip_address"] == "203.0.113.77"
    resp = _update(cloud, member, router["id"], name="renamed", admin_state_up=True)
    assert resp.status_code == 200
    updated = resp.json()["router"]
    assert updated["name"] == "renamed" and updated["revision_number"] == 2
    shown = cloud.client.get(f"{ROUTERS}/{router['id']}", headers=member).json()["router"]
    assert shown == updated
    listed = cloud.client.get(ROUTERS, params={"name": "renamed"}, headers=member).json()
    assert [r["id"] for r in listed["routers"]] == [router["id"]]
    # Clearing the gateway removes its port.
    resp = _update(cloud, member, router["id"], external_gateway_info={})
    assert resp.status_code == 200 and resp.json()["router"]["external_gateway_info"] is None
    assert _ports_of(cloud, router["id"]) == []
    error(_update(cloud, member, router["id"], status="DOWN"), 400)
    assert cloud.client.delete(f"{ROUTERS}/{router['id']}", headers=member).status_code == 204
    error(cloud.client.get(f"{ROUTERS}/{router['id']}", headers=member), 404, "RouterNotFound")


def test_gateway_and_attribute_errors(cloud: Any) -> None:
    _, member = tenant(cloud, "rt-gw-err")
    private = network(cloud, member)
    for info, status in (
        ({"network_id": private["id"]}, 400),
        ({"network_id": str(uuid.uuid4())}, 404),
        ({"network_id": private["id"], "bogus": 1}, 400),
        ({"enable_snat": True}, 400),
        ("public", 400),
    ):
        body = {"router": {"external_gateway_info": info}}
        error(cloud.client.post(ROUTERS, json=body, headers=member), status)
    for attrs in ({"distributed": True}, {"ha": True}, {"routes": []}, {"flavor_id": "x"}):
        error(cloud.client.post(ROUTERS, json={"router": attrs}, headers=member), 400)
    # Only admins choose the SNAT mode: the refusal names the rule of the request made, as
    # Neutron's does (Ansible's router module shows it to a member who set enable_snat).
    public, _ = _external(cloud)
    info = {"network_id": public["id"], "enable_snat": True}
    refused = cloud.client.post(
        ROUTERS, json={"router": {"external_gateway_info": info}}, headers=member
    )
    error(refused, 403, "PolicyNotAuthorized")
    assert refused.json()["NeutronError"]["message"].startswith(
        "(rule:create_router and rule:create_router:external_gateway_info:enable_snat) is "
        "disallowed by policy"
    )
    assert cloud.client.get(ROUTERS, headers=member).json()["routers"] == []
    router = _router(cloud, member)
    refused = _update(cloud, member, router["id"], external_gateway_info=info)
    error(refused, 403, "PolicyNotAuthorized")
    assert refused.json()["NeutronError"]["message"].startswith(
        "(rule:update_router and rule:update_router:external_gateway_info:enable_snat) is "
        "disallowed by policy"
    )


def test_interfaces_by_subnet_and_by_port(cloud: Any) -> None:
    _, member = tenant(cloud, "rt-if")
    router = _router(cloud, member)
    net1 = network(cloud, member, name="one")
    sub1 = subnet(cloud, member, net1["id"], "10.0.0.0/24")
    resp = _put(cloud, member, router["id"], "add_router_interface", subnet_id=sub1["id"])
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert set(info) == {
        "id",
        "tenant_id",
        "project_id",
        "port_id",
        "subnet_id",
        "subnet_ids",
        "network_id",
    }
    assert (info["id"], info["subnet_id"], info["network_id"]) == (
        router["id"],
        sub1["id"],
        net1["id"],
    )
    assert info["subnet_ids"] == [sub1["id"]]
    iface = cloud.client.get(f"{V2}/ports/{info['port_id']}", headers=member).json()["port"]
    assert iface["device_id"] == router["id"]
    assert iface["device_owner"] == "network:router_interface"
    assert iface["fixed_ips"] == [{"subnet_id": sub1["id"], "ip_address": "10.0.0.1"}]
    # Once per subnet, never overlapping, only with a gateway address.
    error(_put(cloud, member, router["id"], "add_router_interface", subnet_id=sub1["id"]), 400)
    net2 = network(cloud, member, name="two")
    overlap = subnet(cloud, member, net2["id"], "10.0.0.0/25")
    error(_put(cloud, member, router["id"], "add_router_interface", subnet_id=overlap["id"]), 400)
    net3 = network(cloud, member, name="three")
    no_gw = subnet(cloud, member, net3["id"], "10.3.0.0/24", gateway_ip=None)
    error(_put(cloud, member, router["id"], "add_router_interface", subnet_id=no_gw["id"]), 400)
    # Another router cannot take the same gateway address.
    other = _router(cloud, member, name="other")
    error(_put(cloud, member, other["id"], "add_router_interface", subnet_id=sub1["id"]), 409)
    # By port: an unattached port with one IPv4 address.
    net4 = network(cloud, member, name="four")
    sub4 = subnet(cloud, member, net4["id"], "10.4.0.0/24")
    own_port = port(cloud, member, net4["id"])
    resp = _put(cloud, member, router["id"], "add_router_interface", port_id=own_port["id"])
    assert resp.status_code == 200, resp.text
    assert resp.json()["port_id"] == own_port["id"] and resp.json()["subnet_id"] == sub4["id"]
    error(
        _put(cloud, member, other["id"], "add_router_interface", port_id=own_port["id"]),
        409,
        "PortInUse",
    )
    net5 = network(cloud, member, name="five")
    sub5 = subnet(cloud, member, net5["id"], "10.5.0.0/24")
    two_ips = port(
        cloud, member, net5["id"], fixed_ips=[{"subnet_id": sub5["id"]}, {"subnet_id": sub5["id"]}]
    )
    error(_put(cloud, member, other["id"], "add_router_interface", port_id=two_ips["id"]), 400)
    both = {"subnet_id": sub5["id"], "port_id": two_ips["id"]}
    error(_put(cloud, member, other["id"], "add_router_interface", **both), 400)
    error(_put(cloud, member, other["id"], "add_router_interface"), 400)
    error(_put(cloud, member, other["id"], "add_router_interface", port_id="nope"), 404)
    # The router's ports are listed by device_id; it cannot go while it has interfaces.
    assert len(_ports_of(cloud, router["id"])) == 2
    error(cloud.client.delete(f"{ROUTERS}/{router['id']}", headers=member), 409, "RouterInUse")
    # An interface port cannot be deleted through the port API.
    error(cloud.client.delete(f"{V2}/ports/{own_port['id']}", headers=member), 409)
    # Removal by subnet and by port; the port goes with it.
    resp = _put(cloud, member, router["id"], "remove_router_interface", subnet_id=sub1["id"])
    assert resp.status_code == 200 and resp.json()["port_id"] == info["port_id"]
    error(cloud.client.get(f"{V2}/ports/{info['port_id']}", headers=member), 404)
    error(
        _put(cloud, member, router["id"], "remove_router_interface", subnet_id=sub1["id"]),
        404,
        "RouterInterfaceNotFoundForSubnet",
    )
    error(
        _put(
            cloud,
            member,
            router["id"],
            "remove_router_interface",
            port_id=own_port["id"],
            subnet_id=sub1["id"],
        ),
        400,
    )
    resp = _put(cloud, member, router["id"], "remove_router_interface", port_id=own_port["id"])
    assert resp.status_code == 200
    error(cloud.client.get(f"{V2}/ports/{own_port['id']}", headers=member), 404)
    error(
        _put(cloud, member, router["id"], "remove_router_interface", port_id=own_port["id"]),
        404,
        "RouterInterfaceNotFound",
    )
    assert cloud.client.delete(f"{ROUTERS}/{router['id']}", headers=member).status_code == 204


def test_extra_routes(cloud: Any) -> None:
    _, member = tenant(cloud, "rt-routes")
    router = _router(cloud, member)
    net = network(cloud, member)
    sub = subnet(cloud, member, net["id"], "10.0.0.0/24")
    _put(cloud, member, router["id"], "add_router_interface", subnet_id=sub["id"])
    routes = [
        {"destination": "192.168.0.0/24", "nexthop": "10.0.0.5"},
        {"destination": "192.168.1.0/24", "nexthop": "10.0.0.6"},
    ]
    resp = _update(cloud, member, router["id"], routes=routes)
    assert resp.status_code == 200, resp.text
    assert resp.json()["router"]["routes"] == routes
    for bad, kind in (
        ([{"destination": "192.168.0.0/24", "nexthop": "10.9.0.5"}], "InvalidRoutes"),
        ([{"destination": "192.168.0.0/24", "nexthop": "10.0.0.1"}], "InvalidRoutes"),
        ([{"destination": "192.168.0.1/24", "nexthop": "10.0.0.5"}], None),
        ([{"destination": "192.168.0.0/24"}], None),
        (
            [{"destination": f"192.168.{i}.0/24", "nexthop": "10.0.0.5"} for i in range(31)],
            "RoutesExhausted",
        ),
    ):
        error(_update(cloud, member, router["id"], routes=bad), 400, kind)
    error(
        _put(cloud, member, router["id"], "remove_router_interface", subnet_id=sub["id"]),
        409,
        "RouterInterfaceInUseByRoute",
    )
    resp = _update(cloud, member, router["id"], routes=None)
    assert resp.json()["router"]["routes"] == []
    resp = _put(cloud, member, router["id"], "remove_router_interface", subnet_id=sub["id"])
    assert resp.status_code == 200


def test_routers_are_placed_on_the_least_loaded_live_host(cloud: Any) -> None:
    _, member = tenant(cloud, "rt-hosts")
    lonely = _router(cloud, member, name="before-hosts")
    now = utcnow()
    with cloud.db.session() as session:
        for name, enabled in (("h-b", True), ("h-a", True), ("h-off", False)):
            session.add(
                m.Host(id=str(uuid.uuid4()), name=name, enabled=enabled, last_heartbeat_at=now)
            )
        session.add(m.Host(id=str(uuid.uuid4()), name="h-dead", last_heartbeat_at=None))
    made = [_router(cloud, member, name=f"r{i}") for i in range(3)]
    with cloud.db.session() as session:
        names = {h.id: h.name for h in session.query(m.Host)}
        placed = [session.get(m.Router, r["id"]).host_id for r in made]
        assert session.get(m.Router, lonely["id"]).host_id is None
    assert [names[h] for h in placed] == ["h-a", "h-b", "h-a"]
    assert made[0]["availability_zones"] == ["nova"] and lonely["availability_zones"] == []
    # A new interface is DOWN, placed router or not, until the agent carrying the router
    # reports it plugged (tests/api/test_agent_network.py).
    net = network(cloud, member)
    sub = subnet(cloud, member, net["id"], "10.0.0.0/24")
    info = _put(cloud, member, made[0]["id"], "add_router_interface", subnet_id=sub["id"]).json()
    iface = cloud.client.get(f"{V2}/ports/{info['port_id']}", headers=member).json()["port"]
    assert iface["status"] == "DOWN"
    sub2 = subnet(cloud, member, network(cloud, member)["id"], "10.1.0.0/24")
    info = _put(cloud, member, lonely["id"], "add_router_interface", subnet_id=sub2["id"]).json()
    iface = cloud.client.get(f"{V2}/ports/{info['port_id']}", headers=member).json()["port"]
    assert iface["status"] == "DOWN"


def test_routers_move_off_a_dead_host_and_stay_on_a_disabled_one(cloud: Any) -> None:
    from kumo.core.network import routers

    timeout = 30.0
    _, member = tenant(cloud, "rt-failover")
    now = utcnow()
    ids = {name: str(uuid.uuid4()) for name in ("h-1", "h-2", "h-3")}
    with cloud.db.session() as session:
        for name, host_id in ids.items():
            session.add(m.Host(id=host_id, name=name, enabled=True, last_heartbeat_at=now))
    made = [_router(cloud, member, name=f"f{i}") for i in range(3)]

    def hosts_of() -> list[str]:
        with cloud.db.session() as session:
            names = {h.id: h.name for h in session.query(m.Host)}
            return [names[session.get(m.Router, r["id"]).host_id] for r in made]

    assert hosts_of() == ["h-1", "h-2", "h-3"]
    with cloud.db.session() as session:
        # h-1 missed one heartbeat timeout only (an agent restarting): its router stays.
        session.get(m.Host, ids["h-1"]).last_heartbeat_at = now - dt.timedelta(seconds=45)
        session.get(m.Host, ids["h-3"]).enabled = False  # disabled, but alive
        assert routers.reschedule_from_dead_hosts(session, timeout) == []
    with cloud.db.session() as session:
        session.get(m.Host, ids["h-1"]).last_heartbeat_at = now - dt.timedelta(seconds=61)
        (move,) = routers.reschedule_from_dead_hosts(session, timeout)
        assert "moved from dead host h-1" in move
    assert hosts_of() == ["h-2", "h-2", "h-3"], "to the only host that is up and enabled"

    with cloud.db.session() as session:  # every host gone: the routers wait where they are
        for host_id in ids.values():
            session.get(m.Host, host_id).forced_down = True
        assert routers.reschedule_from_dead_hosts(session, timeout) == []
    assert hosts_of() == ["h-2", "h-2", "h-3"]


def test_projects_are_isolated_and_quota_holds(cloud: Any) -> None:
    from kumo.core.network import quotas

    alice_project, alice = tenant(cloud, "rt-alice")
    _, bob = tenant(cloud, "rt-bob")
    router = _router(cloud, alice)
    url = f"{ROUTERS}/{router['id']}"
    assert cloud.client.get(ROUTERS, headers=bob).json()["routers"] == []
    for resp in (
        cloud.client.get(url, headers=bob),
        _update(cloud, bob, router["id"], name="x"),
        cloud.client.delete(url, headers=bob),
        _put(cloud, bob, router["id"], "add_router_interface", subnet_id="x"),
    ):
        error(resp, 404, "RouterNotFound")
    # Alice cannot attach Bob's subnet (she cannot see it).
    bob_net = network(cloud, bob)
    bob_sub = subnet(cloud, bob, bob_net["id"], "10.7.0.0/24")
    error(
        _put(cloud, alice, router["id"], "add_router_interface", subnet_id=bob_sub["id"]),
        404,
        "SubnetNotFound",
    )
    everything = cloud.client.get(ROUTERS, headers=cloud.admin).json()["routers"]
    assert router["id"] in {r["id"] for r in everything}
    with cloud.db.session() as session:
        quotas.update(session, alice_project, {"router": 1})
    error(cloud.client.post(ROUTERS, json={"router": {}}, headers=alice), 409, "OverQuota")


def test_gateway_moves_between_external_networks_and_never_onto_an_inside_one(cloud: Any) -> None:
    first, _ = _external(cloud)
    second, second_subnet = _external(cloud, "198.51.100.0/24")
    router = _router(cloud, cloud.admin, external_gateway_info={"network_id": first["id"]})
    (old_port,) = _ports_of(cloud, router["id"])
    resp = _update(
        cloud, cloud.admin, router["id"], external_gateway_info={"network_id": second["id"]}
    )
    assert resp.status_code == 200, resp.text
    gateway = resp.json()["router"]["external_gateway_info"]
    assert gateway["network_id"] == second["id"]
    assert gateway["external_fixed_ips"][0]["subnet_id"] == second_subnet["id"]
    (new_port,) = _ports_of(cloud, router["id"])
    assert new_port["id"] != old_port["id"]
    # A subnet the router routes from cannot also be its gateway's.
    _update(cloud, cloud.admin, router["id"], external_gateway_info={})
    _put(cloud, cloud.admin, router["id"], "add_router_interface", subnet_id=second_subnet["id"])
    error(
        _update(
            cloud, cloud.admin, router["id"], external_gateway_info={"network_id": second["id"]}
        ),
        400,
    )
    shown = cloud.client.get(f"{ROUTERS}/{router['id']}", headers=cloud.admin).json()["router"]
    assert shown["external_gateway_info"] is None


def test_ipv6_subnets_of_one_network_share_an_interface(cloud: Any) -> None:
    _, member = tenant(cloud, "rt-v6")
    router = _router(cloud, member)
    net = network(cloud, member)
    first = subnet(cloud, member, net["id"], "fd00:1::/64")
    second = subnet(cloud, member, net["id"], "fd00:2::/64")
    one = _put(cloud, member, router["id"], "add_router_interface", subnet_id=first["id"]).json()
    two = _put(cloud, member, router["id"], "add_router_interface", subnet_id=second["id"]).json()
    assert one["port_id"] == two["port_id"] and two["subnet_ids"] == [second["id"]]
    iface = cloud.client.get(f"{V2}/ports/{one['port_id']}", headers=member).json()["port"]
    assert {ip["ip_address"] for ip in iface["fixed_ips"]} == {"fd00:1::1", "fd00:2::1"}
    resp = _put(cloud, member, router["id"], "remove_router_interface", subnet_id=first["id"])
    assert resp.status_code == 200, resp.text
    iface = cloud.client.get(f"{V2}/ports/{one['port_id']}", headers=member).json()["port"]
    assert [ip["ip_address"] for ip in iface["fixed_ips"]] == ["fd00:2::1"]
    resp = _put(cloud, member, router["id"], "remove_router_interface", subnet_id=second["id"])
    assert resp.status_code == 200
    error(cloud.client.get(f"{V2}/ports/{one['port_id']}", headers=member), 404)

"""Neutron floating IPs: allocation from an external network, association through a router,
port details, the rules that keep a floating IP's router path, isolation and quota."""

from __future__ import annotations

import uuid
from typing import Any

from kumo.core.network import quotas

from netapi import V2, error, network, port, subnet, tenant

FIPS = f"{V2}/floatingips"
ROUTERS = f"{V2}/routers"


class Topology:
    """An external network, a project's network behind a router to it, and two ports."""

    def __init__(self, cloud: Any, name: str) -> None:
        self.cloud = cloud
        self.project_id, self.h = tenant(cloud, name)
        self.public = network(cloud, cloud.admin, name="public", **{"router:external": True})
        self.public_subnet = subnet(cloud, cloud.admin, self.public["id"], "203.0.113.0/24")
        self.net = network(cloud, self.h)
        self.subnet = subnet(cloud, self.h, self.net["id"], "10.0.0.0/24")
        resp = cloud.client.post(
            ROUTERS,
            json={"router": {"external_gateway_info": {"network_id": self.public["id"]}}},
            headers=self.h,
        )
        assert resp.status_code == 201, resp.text
        self.router = resp.json()["router"]
        self.interface = self.put_router("add_router_interface", subnet_id=self.subnet["id"])
        self.ports = [port(cloud, self.h, self.net["id"]) for _ in range(2)]

    def put_router(self, action: str, **body: Any) -> Any:
        resp = self.cloud.client.put(
            f"{ROUTERS}/{self.router['id']}/{action}", json=body, headers=self.h
        )
        return resp.json() if resp.status_code == 200 else resp

    def create(self, headers: dict[str, str] | None = None, **attrs: Any) -> Any:
        body = {"floatingip": {"floating_network_id": self.public["id"], **attrs}}
        return self.cloud.client.post(FIPS, json=body, headers=headers or self.h)

    def fip(self, **attrs: Any) -> dict[str, Any]:
        resp = self.create(**attrs)
        assert resp.status_code == 201, resp.text
        return dict(resp.json()["floatingip"])

    def update(self, fip_id: str, **attrs: Any) -> Any:
        return self.cloud.client.put(f"{FIPS}/{fip_id}", json={"floatingip": attrs}, headers=self.h)


def test_create_associate_move_disassociate_delete(cloud: Any) -> None:
    t = Topology(cloud, "fip-life")
    fip = t.fip()
    assert fip["floating_ip_address"].startswith("203.0.113.")
    assert (fip["port_id"], fip["fixed_ip_address"], fip["router_id"]) == (None, None, None)
    assert fip["status"] == "DOWN" and fip["port_details"] is None
    assert fip["project_id"] == fip["tenant_id"] == t.project_id
    # The address is held by a port of no project on the external network.
    held = cloud.client.get(f"{V2}/ports", params={"device_id": fip["id"]}, headers=cloud.admin)
    (holder,) = held.json()["ports"]
    assert holder["device_owner"] == "network:floatingip" and holder["project_id"] == ""
    assert holder["fixed_ips"][0]["ip_address"] == fip["floating_ip_address"]
    first, second = t.ports
    resp = t.update(fip["id"], port_id=first["id"])
    assert resp.status_code == 200, resp.text
    moved = resp.json()["floatingip"]
    assert moved["port_id"] == first["id"] and moved["router_id"] == t.router["id"]
    assert moved["fixed_ip_address"] == first["fixed_ips"][0]["ip_address"]
    details = moved["port_details"]
    assert details["network_id"] == t.net["id"] and details["mac_address"] == first["mac_address"]
    assert set(details) == {
        "name",
        "network_id",
        "mac_address",
        "admin_state_up",
        "status",
        "device_id",
        "device_owner",
    }
    resp = t.update(fip["id"], port_id=second["id"])
    assert resp.json()["floatingip"]["port_id"] == second["id"]
    listed = cloud.client.get(FIPS, params={"port_id": second["id"]}, headers=t.h).json()
    assert [f["id"] for f in listed["floatingips"]] == [fip["id"]]
    shown = cloud.client.get(f"{FIPS}/{fip['id']}", headers=t.h).json()["floatingip"]
    assert shown["router_id"] == t.router["id"] and shown["revision_number"] == 2
    resp = t.update(fip["id"], port_id=None)
    off = resp.json()["floatingip"]
    assert (off["port_id"], off["fixed_ip_address"], off["router_id"]) == (None, None, None)
    assert cloud.client.delete(f"{FIPS}/{fip['id']}", headers=t.h).status_code == 204
    error(cloud.client.get(f"{FIPS}/{fip['id']}", headers=t.h), 404, "FloatingIPNotFound")
    held = cloud.client.get(f"{V2}/ports", params={"device_id": fip["id"]}, headers=cloud.admin)
    assert held.json()["ports"] == []


def test_create_associated_with_a_chosen_fixed_ip(cloud: Any) -> None:
    t = Topology(cloud, "fip-fixed")
    multi = port(
        cloud,
        t.h,
        t.net["id"],
        fixed_ips=[{"ip_address": "10.0.0.50"}, {"ip_address": "10.0.0.51"}],
    )
    error(t.create(port_id=multi["id"]), 400)
    error(t.create(port_id=multi["id"], fixed_ip_address="10.0.0.99"), 400)
    fip = t.fip(port_id=multi["id"], fixed_ip_address="10.0.0.50")
    assert fip["fixed_ip_address"] == "10.0.0.50" and fip["router_id"] == t.router["id"]
    resp = t.update(fip["id"], port_id=multi["id"], fixed_ip_address="10.0.0.51")
    assert resp.json()["floatingip"]["fixed_ip_address"] == "10.0.0.51"
    # One floating IP per fixed IP and external network.
    error(
        t.create(port_id=multi["id"], fixed_ip_address="10.0.0.51"),
        409,
        "FloatingIPPortAlreadyAssociated",
    )
    # Deleting the port disassociates.
    assert cloud.client.delete(f"{V2}/ports/{multi['id']}", headers=t.h).status_code == 204
    shown = cloud.client.get(f"{FIPS}/{fip['id']}", headers=t.h).json()["floatingip"]
    assert (shown["port_id"], shown["fixed_ip_address"], shown["router_id"]) == (None, None, None)


def test_creation_errors(cloud: Any) -> None:
    t = Topology(cloud, "fip-err")
    error(t.create(floating_network_id=t.net["id"]), 400)
    error(t.create(floating_network_id=str(uuid.uuid4())), 404, "NetworkNotFound")
    error(cloud.client.post(FIPS, json={"floatingip": {}}, headers=t.h), 400)
    error(t.create(bogus=1), 400)
    error(t.create(fixed_ip_address="10.0.0.5"), 400)
    # Only admins choose the address.
    error(t.create(floating_ip_address="203.0.113.99"), 403)
    resp = t.create(cloud.admin, floating_ip_address="203.0.113.99", project_id=t.project_id)
    assert resp.status_code == 201, resp.text
    assert resp.json()["floatingip"]["floating_ip_address"] == "203.0.113.99"
    error(t.create(cloud.admin, floating_ip_address="203.0.113.99"), 409)
    # A port whose subnet no router connects to the external network.
    lonely_net = network(cloud, t.h, name="lonely")
    subnet(cloud, t.h, lonely_net["id"], "10.9.0.0/24")
    lonely = port(cloud, t.h, lonely_net["id"])
    error(t.create(port_id=lonely["id"]), 404, "ExternalGatewayForFloatingIPNotFound")
    # Router plumbing cannot carry a floating IP.
    error(t.create(port_id=t.interface["port_id"]), 400)
    # Nothing was half-made: only the admin's address exists.
    listed = cloud.client.get(FIPS, headers=t.h).json()["floatingips"]
    assert [f["floating_ip_address"] for f in listed] == ["203.0.113.99"]


def test_router_path_stays_while_a_floating_ip_needs_it(cloud: Any) -> None:
    t = Topology(cloud, "fip-path")
    fip = t.fip(port_id=t.ports[0]["id"])
    resp = t.put_router("remove_router_interface", subnet_id=t.subnet["id"])
    error(resp, 409, "RouterInterfaceInUseByFloatingIP")
    resp = cloud.client.put(
        f"{ROUTERS}/{t.router['id']}",
        json={"router": {"external_gateway_info": {}}},
        headers=t.h,
    )
    error(resp, 409, "RouterExternalGatewayInUseByFloatingIp")
    assert t.update(fip["id"], port_id=None).status_code == 200
    assert isinstance(t.put_router("remove_router_interface", subnet_id=t.subnet["id"]), dict)


def test_moving_to_a_port_behind_another_router(cloud: Any) -> None:
    t = Topology(cloud, "fip-move")
    fip = t.fip(port_id=t.ports[1]["id"])
    net2 = network(cloud, t.h, name="second")
    sub2 = subnet(cloud, t.h, net2["id"], "10.2.0.0/24")
    body = {"router": {"external_gateway_info": {"network_id": t.public["id"]}}}
    router2 = cloud.client.post(ROUTERS, json=body, headers=t.h).json()["router"]
    cloud.client.put(
        f"{ROUTERS}/{router2['id']}/add_router_interface",
        json={"subnet_id": sub2["id"]},
        headers=t.h,
    )
    other = port(cloud, t.h, net2["id"])
    moved = t.update(fip["id"], port_id=other["id"]).json()["floatingip"]
    assert moved["router_id"] == router2["id"] and moved["fixed_ip_address"].startswith("10.2.")


def test_projects_are_isolated_and_quota_holds(cloud: Any) -> None:
    t = Topology(cloud, "fip-alice")
    _, bob = tenant(cloud, "fip-bob")
    fip = t.fip()
    assert cloud.client.get(FIPS, headers=bob).json()["floatingips"] == []
    url = f"{FIPS}/{fip['id']}"
    for resp in (
        cloud.client.get(url, headers=bob),
        cloud.client.put(url, json={"floatingip": {"port_id": None}}, headers=bob),
        cloud.client.delete(url, headers=bob),
    ):
        error(resp, 404, "FloatingIPNotFound")
    # Bob cannot point his floating IP at Alice's port.
    bob_fip = t.create(bob)
    assert bob_fip.status_code == 201
    error(
        cloud.client.put(
            f"{FIPS}/{bob_fip.json()['floatingip']['id']}",
            json={"floatingip": {"port_id": t.ports[0]["id"]}},
            headers=bob,
        ),
        404,
    )
    assert len(cloud.client.get(FIPS, headers=cloud.admin).json()["floatingips"]) == 2
    with cloud.db.session() as session:
        quotas.update(session, t.project_id, {"floatingip": 1})
    error(t.create(), 409, "OverQuota")


def test_deleting_the_external_network_deletes_its_floating_ips(cloud: Any) -> None:
    public = network(cloud, cloud.admin, name="doomed", **{"router:external": True})
    subnet(cloud, cloud.admin, public["id"], "198.51.100.0/24")
    body = {"floatingip": {"floating_network_id": public["id"]}}
    fip = cloud.client.post(FIPS, json=body, headers=cloud.admin).json()["floatingip"]
    resp = cloud.client.delete(f"{V2}/networks/{public['id']}", headers=cloud.admin)
    assert resp.status_code == 204, resp.text
    error(cloud.client.get(f"{FIPS}/{fip['id']}", headers=cloud.admin), 404)

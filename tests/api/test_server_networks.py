"""Servers on networks: ports made (or claimed) at create, addresses in server views, the
binding following the host, interfaces attached and detached, ports gone (or freed) with
the server; on every database backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.agent.spec import network_data
from kumo.core.compute import reports
from kumo.db import models as m

NETWORKS = "/network/v2.0/networks"
SUBNETS = "/network/v2.0/subnets"
PORTS = "/network/v2.0/ports"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _network(compute: Compute, headers: dict[str, str], name: str, cidr: str) -> str:
    client = compute.client
    made = client.post(NETWORKS, json={"network": {"name": name}}, headers=headers)
    assert made.status_code == 201, made.text
    net_id: str = made.json()["network"]["id"]
    subnet = {"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4}}
    resp = client.post(SUBNETS, json=subnet, headers=headers)
    assert resp.status_code == 201, resp.text
    return net_id


def _server(compute: Compute, headers: dict[str, str], **extra: Any) -> str:
    resp = compute.create(headers, **extra)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    return server_id


def _actions(compute: Compute, server_id: str) -> dict[str, str]:
    """The server's instance actions: the action by request id."""
    resp = compute.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=compute.cloud.admin
    )
    assert resp.status_code == 200, resp.text
    return {a["request_id"]: a["action"] for a in resp.json()["instanceActions"]}


def _ports_of(compute: Compute, server_id: str) -> list[dict[str, Any]]:
    resp = compute.client.get(PORTS, params={"device_id": server_id}, headers=compute.cloud.admin)
    assert resp.status_code == 200, resp.text
    ports: list[dict[str, Any]] = resp.json()["ports"]
    return ports


def test_server_gets_a_port_and_shows_its_address(compute: Compute) -> None:
    admin = compute.cloud.admin
    net_id = _network(compute, admin, "private", "10.20.0.0/24")
    server_id = _server(compute, admin, networks=[{"uuid": net_id}])
    (port,) = _ports_of(compute, server_id)
    assert port["device_owner"].startswith("compute:")
    ip = port["fixed_ips"][0]["ip_address"]
    assert ip.startswith("10.20.0.")
    shown = compute.show(server_id, admin)
    assert shown["addresses"] == {
        "private": [
            {
                "version": 4,
                "addr": ip,
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": port["mac_address"],
            }
        ]
    }
    assert shown["security_groups"] == [{"name": "default"}]
    compute.converge()
    with compute.db.session() as session:
        row = session.get(m.Port, port["id"])
        assert row is not None and row.binding_host_id == compute.host_id
        item = reports.work_item(session, session.get(m.Instance, server_id))
    (nic,) = item["nics"]
    assert (nic["port_id"], nic["fixed_ips"][0]["ip_address"]) == (port["id"], ip)
    data = network_data(item["nics"])
    assert data["links"][0]["ethernet_mac_address"] == port["mac_address"]
    assert data["networks"][0]["ip_address"] == ip
    assert data["networks"][0]["routes"][0]["gateway"] == "10.20.0.1"
    # Nova's ip filter is a regular expression on the fixed addresses.
    listed = compute.client.get(SERVERS, params={"ip": ip.replace(".", r"\.")}, headers=admin)
    assert [s["id"] for s in listed.json()["servers"]] == [server_id]
    assert (
        compute.client.get(SERVERS, params={"ip": "^192\\."}, headers=admin).json()["servers"] == []
    )
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    compute.converge()
    assert _ports_of(compute, server_id) == []


def test_a_server_in_no_security_group_shows_no_security_groups_key(compute: Compute) -> None:
    """Nova leaves ``security_groups`` out of a server that has none: one whose only group
    was removed (tempest's test_remove_server_all_security_groups) and one with no port."""
    admin = compute.cloud.admin
    bare = _server(compute, admin)  # before any network exists: no port, no group
    net_id = _network(compute, admin, "sg-net", "10.40.0.0/24")
    server_id = _server(compute, admin, networks=[{"uuid": net_id}])
    compute.converge()
    assert compute.show(server_id, admin)["security_groups"] == [{"name": "default"}]
    resp = compute.action(server_id, admin, {"removeSecurityGroup": {"name": "default"}})
    assert resp.status_code == 202, resp.text
    assert "security_groups" not in compute.show(server_id, admin)
    assert "security_groups" not in compute.show(bare, admin)
    listed = compute.client.get(f"{SERVERS}/detail", headers=admin).json()["servers"]
    assert [("security_groups" in s) for s in listed] == [False, False]
    resp = compute.action(server_id, admin, {"addSecurityGroup": {"name": "default"}})
    assert resp.status_code == 202, resp.text
    assert compute.show(server_id, admin)["security_groups"] == [{"name": "default"}]


def test_full_resync_gives_each_server_its_own_nics(compute: Compute) -> None:
    """The host's whole list reads every server's ports at once (no queries per server):
    each server still gets exactly its own NICs, in its order, and a server without
    networks gets none."""
    admin = compute.cloud.admin
    bare = _server(compute, admin)  # before any network exists: no NIC
    red = _network(compute, admin, "red", "10.31.0.0/24")
    blue = _network(compute, admin, "blue", "10.32.0.0/24")
    both = _server(compute, admin, networks=[{"uuid": blue}, {"uuid": red}])
    one = _server(compute, admin, networks=[{"uuid": red}])
    compute.converge()
    with compute.db.session() as session:
        items = {i["id"]: i for i in reports.work_for_host(session, compute.host_id)}
    got = {
        server_id: [(n["network_id"], n["fixed_ips"][0]["ip_address"][:8]) for n in item["nics"]]
        for server_id, item in items.items()
        if item.get("nics")
    }
    assert got == {
        both: [(blue, "10.32.0."), (red, "10.31.0.")],
        one: [(red, "10.31.0.")],
    }
    assert bare in items
    ports = {p["id"] for server_id in (both, one) for p in _ports_of(compute, server_id)}
    assert {n["port_id"] for item in items.values() for n in item.get("nics", [])} == ports


def test_a_users_port_is_claimed_then_freed_not_deleted(compute: Compute) -> None:
    admin = compute.cloud.admin
    net_id = _network(compute, admin, "mine", "10.21.0.0/24")
    made = compute.client.post(PORTS, json={"port": {"network_id": net_id}}, headers=admin)
    assert made.status_code == 201, made.text
    port_id = made.json()["port"]["id"]
    server_id = _server(compute, admin, networks=[{"port": port_id}])
    # The same port cannot go to a second server.
    again = compute.create(admin, networks=[{"port": port_id}])
    assert again.status_code == 409, again.text
    compute.converge()
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    compute.converge()
    port = compute.client.get(f"{PORTS}/{port_id}", headers=admin).json()["port"]
    assert port["device_id"] == "" and port["device_owner"] == ""


def test_bad_network_requests(compute: Compute) -> None:
    admin = compute.cloud.admin
    missing = "8e0a9f7c-0000-4000-8000-000000000000"
    for networks, status in (
        ([{"uuid": missing}], 400),
        ([{"port": missing}], 404),
        ([{"uuid": "not-a-uuid"}], 400),
        ([{"fixed_ip": "10.0.0.1"}], 400),
        ("everything", 400),
    ):
        resp = compute.create(admin, networks=networks)
        assert resp.status_code == status, (networks, resp.text)
    assert compute.client.get(SERVERS, headers=admin).json()["servers"] == []
    # Two networks and none named: Nova cannot choose.
    _network(compute, admin, "one", "10.22.0.0/24")
    _network(compute, admin, "two", "10.23.0.0/24")
    resp = compute.create(admin)
    assert resp.status_code == 409, resp.text
    assert "Multiple possible networks" in resp.json()["conflictingRequest"]["message"]
    # "none" and "auto" need 2.37, above this cloud's maximum: 400 as Nova answers.
    none = compute.create(admin, networks="none")
    assert none.status_code == 400, none.text


def test_another_projects_private_network_is_refused(compute: Compute) -> None:
    cloud = compute.cloud
    a = cloud.project("net-a")
    b = cloud.project("net-b")
    _, token_a = cloud.member("alice-n", a["id"])
    _, token_b = cloud.member("bob-n", b["id"])
    net_a = _network(compute, cloud.h(token_a), "a-net", "10.30.0.0/24")
    resp = compute.create(cloud.h(token_b), networks=[{"uuid": net_a}])
    assert resp.status_code == 400, resp.text
    assert "could not be found" in resp.json()["badRequest"]["message"]


def test_interfaces_attach_detach_and_fixed_ips(compute: Compute) -> None:
    admin = compute.cloud.admin
    first = _network(compute, admin, "first", "10.40.0.0/24")
    second = _network(compute, admin, "second", "10.41.0.0/24")
    server_id = _server(compute, admin, networks=[{"uuid": first}])
    compute.converge()
    url = f"{SERVERS}/{server_id}/os-interface"
    attached = compute.client.post(
        url, json={"interfaceAttachment": {"net_id": second}}, headers=admin
    )
    assert attached.status_code == 200, attached.text
    port_id = attached.json()["interfaceAttachment"]["port_id"]
    listed = compute.client.get(url, headers=admin).json()["interfaceAttachments"]
    assert [i["net_id"] for i in listed] == [first, second]
    assert set(compute.show(server_id, admin)["addresses"]) == {"first", "second"}
    shown = compute.client.get(f"{url}/{port_id}", headers=admin)
    assert shown.json()["interfaceAttachment"]["mac_addr"]
    # addFixedIp / removeFixedIp (up to 2.43): one more address on the first network.
    added = compute.action(server_id, admin, {"addFixedIp": {"networkId": first}})
    assert added.status_code == 202, added.text
    addrs = [a["addr"] for a in compute.show(server_id, admin)["addresses"]["first"]]
    assert len(addrs) == 2
    removed = compute.action(server_id, admin, {"removeFixedIp": {"address": addrs[1]}})
    assert removed.status_code == 202, removed.text
    assert len(compute.show(server_id, admin)["addresses"]["first"]) == 1
    assert compute.client.delete(f"{url}/{port_id}", headers=admin).status_code == 202
    assert compute.client.get(f"{url}/{port_id}", headers=admin).status_code == 404
    assert set(compute.show(server_id, admin)["addresses"]) == {"first"}
    both = {"interfaceAttachment": {"net_id": first, "port_id": port_id}}
    assert compute.client.post(url, json=both, headers=admin).status_code == 400
    # Each ran through the lifecycle: recorded as the server's instance actions, as Nova.
    recorded = sorted(_actions(compute, server_id).values())
    assert recorded == sorted(
        ["create", "attach_interface", "addFixedIp", "removeFixedIp", "detach_interface"]
    )


def test_ips_and_the_core_view_show_version_and_address_only(compute: Compute) -> None:
    admin = compute.cloud.admin
    net_id = _network(compute, admin, "plain", "10.50.0.0/24")
    server_id = _server(compute, admin, networks=[{"uuid": net_id}])
    compute.converge()
    (address,) = compute.show(server_id, admin)["addresses"]["plain"]
    basic = {"version": 4, "addr": address["addr"]}
    ips = compute.client.get(f"{SERVERS}/{server_id}/ips", headers=admin)
    assert ips.json() == {"addresses": {"plain": [basic]}}
    one = compute.client.get(f"{SERVERS}/{server_id}/ips/plain", headers=admin)
    assert one.json() == {"plain": [basic]}
    assert compute.client.get(f"{SERVERS}/{server_id}/ips/other", headers=admin).status_code == 404
    updated = compute.client.put(
        f"{SERVERS}/{server_id}", json={"server": {"name": "renamed"}}, headers=admin
    )
    assert updated.json()["server"]["addresses"] == {"plain": [basic]}
    # Nova shows progress only for ACTIVE, BUILD and the moving states.
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    compute.converge()
    stopped = compute.show(server_id, admin)
    assert stopped["status"] == "SHUTOFF" and "progress" not in stopped


def test_security_group_changes_are_recorded_as_instance_actions(compute: Compute) -> None:
    """addSecurityGroup and removeSecurityGroup run through the operations' lifecycle like
    every server action: each is an instance action under its request's id; a refused one
    leaves none."""
    admin = compute.cloud.admin
    net_id = _network(compute, admin, "sg-actions", "10.41.0.0/24")
    server_id = _server(compute, admin, networks=[{"uuid": net_id}])
    compute.converge()
    asked: dict[str, str] = {}
    for name in ("removeSecurityGroup", "addSecurityGroup"):
        resp = compute.action(server_id, admin, {name: {"name": "default"}})
        assert resp.status_code == 202, resp.text
        asked[resp.headers["X-Compute-Request-ID"]] = name
    before = _actions(compute, server_id)
    assert asked.items() <= before.items()
    refused = compute.action(server_id, admin, {"addSecurityGroup": {"name": "no-such-group"}})
    assert refused.status_code in (400, 404), refused.text
    assert _actions(compute, server_id) == before

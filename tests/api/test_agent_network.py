"""The agent's network loop against the agent API: a host's network desired state (ports
bound there with compiled rules, its DHCP port and leases), applied by the in-memory
datapath, ports reported ACTIVE; a binding fault when the host cannot carry the network."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

from kumo.agent.metadata import documents
from kumo.agent.network import HostNetworkConfig, NetworkLoop
from kumo.core.network import host_state, routers
from kumo.drivers.network.fake import FakeNetworkDriver

NETWORKS = "/network/v2.0/networks"
SUBNETS = "/network/v2.0/subnets"
PORTS = "/network/v2.0/ports"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _network(compute: Compute, cidr: str, **extra: Any) -> str:
    admin = compute.cloud.admin
    made = compute.client.post(NETWORKS, json={"network": {"name": "n", **extra}}, headers=admin)
    assert made.status_code == 201, made.text
    net_id: str = made.json()["network"]["id"]
    body = {"subnet": {"network_id": net_id, "cidr": cidr, "ip_version": 4}}
    assert compute.client.post(SUBNETS, json=body, headers=admin).status_code == 201
    return net_id


def _loop(compute: Compute, tmp_path: Path, types: tuple[str, ...]) -> NetworkLoop:
    return NetworkLoop(
        compute.agent_client,  # type: ignore[arg-type]
        "/agent/v1",
        compute.host_id,
        FakeNetworkDriver(tmp_path / "net", network_types=types),
        HostNetworkConfig(host_namespace="kumo-test-host", physical_networks={"public": "p0"}),
    )


def test_desired_state_is_applied_and_ports_come_up(compute: Compute, tmp_path: Path) -> None:
    admin = compute.cloud.admin
    net_id = _network(compute, "10.60.0.0/24")
    resp = compute.create(admin, networks=[{"uuid": net_id}])
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    compute.converge()
    with compute.db.session() as session:
        desired = host_state.desired_for_host(session, compute.host_id)
    (port,) = desired["ports"]
    assert port["network_id"] == net_id
    # The default group: egress anywhere, ingress from members of the group (this port).
    ingress = [r for r in port["rules"] if r["direction"] == "ingress"]
    assert [r["remote_ip_prefix"] for r in ingress] == [f"{port['fixed_ips'][0]['ip']}/32"]
    (dhcp,) = desired["dhcp"]
    assert dhcp["leases"] == [
        {"mac": port["mac"], "ip": port["fixed_ips"][0]["ip"], "hostname": ""}
    ]
    assert dhcp["subnets"][0]["dhcp_ip"].startswith("10.60.0.")
    loop = _loop(compute, tmp_path, ("flat", "local", "vxlan"))
    assert loop.sync_once() is True
    assert loop.sync_once() is False  # same revision: nothing to do
    ports = compute.client.get(PORTS, params={"network_id": net_id}, headers=admin).json()
    statuses = {p["device_owner"]: p["status"] for p in ports["ports"]}
    assert statuses == {"compute:nova": "ACTIVE", "network:dhcp": "ACTIVE"}
    # The server gone, its port and the host's DHCP port for the network go too.
    deleted = compute.client.delete(f"/compute/v2.1/servers/{server_id}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    compute.converge()
    left = compute.client.get(PORTS, params={"network_id": net_id}, headers=admin).json()
    assert left["ports"] == []
    with compute.db.session() as session:
        assert host_state.desired_for_host(session, compute.host_id)["ports"] == []


def test_metadata_answers_for_the_server_behind_an_address(compute: Compute) -> None:
    admin = compute.cloud.admin
    net_id = _network(compute, "10.63.0.0/24")
    resp = compute.create(admin, networks=[{"uuid": net_id}], metadata={"role": "web"})
    assert resp.status_code == 202, resp.text
    server_id = resp.json()["server"]["id"]
    compute.converge()
    ip = compute.show(server_id, admin)["addresses"]["n"][0]["addr"]
    url = f"/agent/v1/hosts/{compute.host_id}/metadata"
    found = compute.agent_client.get(url, params={"network_id": net_id, "ip": ip})
    assert found.status_code == 200, found.text
    docs = documents(found.json()["item"])
    meta = json.loads(docs["openstack/latest/meta_data.json"])
    assert (meta["uuid"], meta["meta"]) == (server_id, {"role": "web"})
    assert b"meta_data.json" in docs["openstack/latest"]
    assert docs["latest/meta-data/instance-id"] == server_id.encode()
    network = json.loads(docs["openstack/2018-08-27/network_data.json"])
    assert network["networks"][0]["ip_address"] == ip
    # Another address, another host, no credential: nothing.
    other = compute.agent_client.get(url, params={"network_id": net_id, "ip": "10.63.0.250"})
    assert other.status_code == 404
    elsewhere = compute.agent_client.get(
        "/agent/v1/hosts/another-host/metadata", params={"network_id": net_id, "ip": ip}
    )
    assert elsewhere.status_code == 404
    assert compute.client.get(url, params={"network_id": net_id, "ip": ip}).status_code == 401


def test_a_network_the_host_cannot_carry_faults_its_ports(compute: Compute, tmp_path: Path) -> None:
    """A VLAN port on a host whose kernel has no 802.1Q: a binding fault with the reason
    (the scheduler skips hosts that report no vlan; this one reported nothing)."""
    admin = compute.cloud.admin
    net_id = _network(
        compute,
        "10.61.0.0/24",
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    )
    resp = compute.create(admin, networks=[{"uuid": net_id}])
    assert resp.status_code == 202, resp.text
    compute.converge()
    loop = _loop(compute, tmp_path, ("flat", "local", "vxlan"))
    loop.sync_once()
    ports = compute.client.get(
        PORTS, params={"network_id": net_id, "device_owner": "compute:nova"}, headers=admin
    ).json()["ports"]
    assert [p["status"] for p in ports] == ["ERROR"]
    assert ports[0]["binding:vif_type"] == "binding_failed"


def test_scheduler_skips_hosts_that_cannot_carry_the_network(compute: Compute) -> None:
    admin = compute.cloud.admin
    net_id = _network(
        compute,
        "10.62.0.0/24",
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    )
    body = compute.registration_body(compute.host_id, "fake-1", 8, 8704)
    body["host"]["capabilities"]["network"] = {
        "network_types": ["flat", "local", "vxlan"],
        "reasons": {"vlan": "ip link add type vlan: Operation not supported"},
    }
    assert compute.agent_client.post("/agent/v1/hosts", json=body).status_code == 200
    resp = compute.create(admin, networks=[{"uuid": net_id}])
    assert resp.status_code == 202, resp.text
    compute.converge()
    shown = compute.show(resp.json()["server"]["id"], admin)
    assert shown["status"] == "ERROR"
    assert "cannot carry vlan networks (ip link add type vlan" in shown["fault"]["details"]


def _router_port_statuses(compute: Compute, router_id: str) -> dict[str, str]:
    found = compute.client.get(PORTS, params={"device_id": router_id}, headers=compute.cloud.admin)
    return {p["id"]: p["status"] for p in found.json()["ports"]}


def _interface(compute: Compute, router_id: str, net_id: str) -> str:
    """A new port on the network, added to the router as an interface; its id."""
    admin = compute.cloud.admin
    made = compute.client.post(PORTS, json={"port": {"network_id": net_id}}, headers=admin)
    port_id: str = made.json()["port"]["id"]
    added = compute.client.put(
        f"/network/v2.0/routers/{router_id}/add_router_interface",
        json={"port_id": port_id},
        headers=admin,
    )
    assert added.status_code == 200, added.text
    return port_id


def _external_router(cloud: Any) -> dict[str, Any]:
    """A router with its gateway on a new external (flat, physical network "public")
    network, 203.0.113.0/24."""
    admin = cloud.admin
    public = cloud.client.post(
        NETWORKS,
        json={
            "network": {
                "name": "public",
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "public",
            }
        },
        headers=admin,
    ).json()["network"]
    body = {"subnet": {"network_id": public["id"], "cidr": "203.0.113.0/24", "ip_version": 4}}
    assert cloud.client.post(SUBNETS, json=body, headers=admin).status_code == 201
    router: dict[str, Any] = cloud.client.post(
        "/network/v2.0/routers",
        json={"router": {"name": "r", "external_gateway_info": {"network_id": public["id"]}}},
        headers=admin,
    ).json()["router"]
    return router


def test_router_ports_come_up_once_the_routers_host_plugged_them(
    cloud: Any, tmp_path: Path
) -> None:
    """Issue 13 item 7: a router made before any host was up (as `kumo up` makes router1)
    has DOWN ports; once placed, its agent plugs them and reports them ACTIVE. An interface
    on a network the host cannot carry stays DOWN, and another host cannot report them."""
    router = _external_router(cloud)
    compute = Compute(cloud, tmp_path)  # the first host registers after the router
    carried = _network(compute, "10.64.0.0/24")
    vlan = _network(
        compute,
        "10.65.0.0/24",
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    )
    ports = {net_id: _interface(compute, router["id"], net_id) for net_id in (carried, vlan)}
    with compute.db.session() as session:
        assert routers.place_unhosted(session, 60.0) == 1
    statuses = _router_port_statuses(compute, router["id"])
    (gateway,) = set(statuses) - set(ports.values())
    assert set(statuses.values()) == {"DOWN"}, "nothing is plugged yet"

    other = str(uuid.uuid4())
    compute.register(other, "fake-2", 8, 8704)
    url = f"/agent/v1/hosts/{other}/network/status"
    claim = {"ports": dict.fromkeys(statuses, "ACTIVE")}
    assert compute.agent_client.post(url, json=claim).status_code == 204
    assert set(_router_port_statuses(compute, router["id"]).values()) == {"DOWN"}

    loop = _loop(compute, tmp_path, ("flat", "local", "vxlan"))
    assert loop.sync_once() is True
    assert _router_port_statuses(compute, router["id"]) == {
        gateway: "ACTIVE",
        ports[carried]: "ACTIVE",
        ports[vlan]: "DOWN",
    }


FIPS = "/network/v2.0/floatingips"


def _fip(compute: Compute, fip_id: str) -> dict[str, Any]:
    shown = compute.client.get(f"{FIPS}/{fip_id}", headers=compute.cloud.admin)
    assert shown.status_code == 200, shown.text
    fip: dict[str, Any] = shown.json()["floatingip"]
    return fip


def _associate(compute: Compute, fip_id: str, port_id: str | None) -> dict[str, Any]:
    body = {"floatingip": {"port_id": port_id}}
    done = compute.client.put(f"{FIPS}/{fip_id}", json=body, headers=compute.cloud.admin)
    assert done.status_code == 200, done.text
    fip: dict[str, Any] = done.json()["floatingip"]
    return fip


def test_floating_ips_come_up_once_the_routers_host_applied_them(
    cloud: Any, tmp_path: Path
) -> None:
    """A floating IP is DOWN when associated and ACTIVE once the agent of the host carrying
    its router reports it applied (address on the gateway leg, NAT to an interface it
    plugged), as Neutron's L3 agent reports it; DOWN again at once when disassociated.
    Another host cannot change it, an agent that does not report floating IPs changes
    nothing, and one whose fixed address lies behind a network the host cannot carry
    stays DOWN."""
    router = _external_router(cloud)
    public = router["external_gateway_info"]["network_id"]
    compute = Compute(cloud, tmp_path)
    admin = compute.cloud.admin
    carried = _network(compute, "10.66.0.0/24")
    vlan = _network(
        compute,
        "10.67.0.0/24",
        **{"provider:network_type": "vlan", "provider:physical_network": "physnet1"},
    )
    fips = {}
    for net_id in (carried, vlan):
        _interface(compute, router["id"], net_id)
        made = compute.client.post(PORTS, json={"port": {"network_id": net_id}}, headers=admin)
        body = {"floatingip": {"floating_network_id": public, "port_id": made.json()["port"]["id"]}}
        created = compute.client.post(FIPS, json=body, headers=admin)
        assert created.status_code == 201, created.text
        assert created.json()["floatingip"]["status"] == "DOWN", "nothing applied it yet"
        fips[net_id] = created.json()["floatingip"]["id"]
    with compute.db.session() as session:
        assert routers.place_unhosted(session, 60.0) == 1
    fip_id = fips[carried]

    other = str(uuid.uuid4())
    compute.register(other, "fake-2", 8, 8704)
    claim = {"ports": {}, "floating_ips": dict.fromkeys(fips.values(), "ACTIVE")}
    url = f"/agent/v1/hosts/{other}/network/status"
    assert compute.agent_client.post(url, json=claim).status_code == 204
    assert {_fip(compute, f)["status"] for f in fips.values()} == {"DOWN"}

    loop = _loop(compute, tmp_path, ("flat", "local", "vxlan"))
    assert loop.sync_once() is True
    before = _fip(compute, fip_id)
    assert (before["status"], _fip(compute, fips[vlan])["status"]) == ("ACTIVE", "DOWN")

    own = f"/agent/v1/hosts/{compute.host_id}/network/status"
    older_agent = {"ports": {}, "faults": {}}  # no floating_ips field: changes nothing
    assert compute.agent_client.post(own, json=older_agent).status_code == 204
    assert _fip(compute, fip_id)["revision_number"] == before["revision_number"]
    bad = {"floating_ips": {fip_id: "UP"}}
    refused = compute.agent_client.post(own, json=bad)
    assert refused.status_code == 400 and "ACTIVE" in refused.text, refused.text
    taken_down = compute.agent_client.post(url, json={"floating_ips": {fip_id: "DOWN"}})
    assert taken_down.status_code == 204
    assert _fip(compute, fip_id)["status"] == "ACTIVE", "another host cannot take it down"

    port_id = before["port_id"]
    assert _associate(compute, fip_id, None)["status"] == "DOWN"
    # Associated again before the agent's next pass: the datapath it applied is what it
    # is asked for again, yet the floating IP is DOWN until the agent reports it.
    assert _associate(compute, fip_id, port_id)["status"] == "DOWN"
    assert loop.sync_once() is False, "the same datapath: nothing to apply"
    assert _fip(compute, fip_id)["status"] == "ACTIVE"
    # Disassociated while the agent's report of its pass before was on its way: that
    # report cannot bring it back.
    assert _associate(compute, fip_id, None)["status"] == "DOWN"
    late = {"floating_ips": {fip_id: "ACTIVE"}}
    assert compute.agent_client.post(own, json=late).status_code == 204
    assert _fip(compute, fip_id)["status"] == "DOWN"
    assert loop.sync_once() is True
    assert _fip(compute, fip_id)["status"] == "DOWN"


def _changes(compute: Compute, since: int = -1, wait: float = 0.0) -> int:
    url = f"/agent/v1/hosts/{compute.host_id}/network/changes"
    resp = compute.agent_client.get(url, params={"since": since, "wait": wait})
    assert resp.status_code == 200, resp.text
    return int(resp.json()["mark"])


def test_network_changes_long_poll_wakes_on_networking_writes_only(compute: Compute) -> None:
    """The agent's long-poll answers when a networking write commits and not for other
    writes, which only run out its wait."""
    admin = compute.cloud.admin
    mark = _changes(compute)
    assert _changes(compute, mark, wait=0.2) == mark, "nothing changed: the wait runs out"

    net_id = _network(compute, "10.61.0.0/24")
    after_network = _changes(compute, mark, wait=30)
    assert after_network != mark, "a network and subnet create wakes the poll"

    port = compute.client.post(PORTS, json={"port": {"network_id": net_id}}, headers=admin)
    assert port.status_code == 201, port.text
    after_port = _changes(compute, after_network, wait=30)
    assert after_port != after_network

    gone = compute.client.delete(f"{PORTS}/{port.json()['port']['id']}", headers=admin)
    assert gone.status_code == 204, gone.text
    after_delete = _changes(compute, after_port, wait=30)
    assert after_delete != after_port

    flavor = {"flavor": {"name": "quiet", "ram": 64, "vcpus": 1, "disk": 1}}
    made = compute.client.post("/compute/v2.1/flavors", json=flavor, headers=admin)
    assert made.status_code == 200, made.text
    assert _changes(compute, after_delete, wait=0.2) == after_delete, "a flavor is no network"


def test_unregistered_credential_cannot_long_poll(compute: Compute) -> None:
    resp = compute.client.get(f"/agent/v1/hosts/{compute.host_id}/network/changes")
    assert resp.status_code in (401, 403), resp.text

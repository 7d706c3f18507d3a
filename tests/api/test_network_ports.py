"""Neutron ports: IPAM (requested and automatic addresses, exhaustion, concurrency), MACs,
security groups and port security, address pairs, bindings (admins only), updates of
fixed IPs, deletion rules, filters, isolation."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from kumo.core.errors import Conflict
from kumo.core.network import ports
from kumo.core.policy import Context

from netapi import V2, error, network, port, subnet, tenant


def _net(cloud: Any, h: dict[str, str], cidr: str = "10.0.0.0/24", **attrs: Any) -> tuple[str, str]:
    net = network(cloud, h)
    return net["id"], subnet(cloud, h, net["id"], cidr=cidr, **attrs)["id"]


def _post(cloud: Any, h: dict[str, str], **attrs: Any) -> Any:
    return cloud.client.post(f"{V2}/ports", json={"port": attrs}, headers=h)


def _put(cloud: Any, h: dict[str, str], port_id: str, **attrs: Any) -> Any:
    return cloud.client.put(f"{V2}/ports/{port_id}", json={"port": attrs}, headers=h)


def test_create_show_update_delete(cloud: Any) -> None:
    project, h = tenant(cloud, "alpha")
    net_id, sub_id = _net(cloud, h)
    p = port(cloud, h, net_id, name="p1")
    assert p["fixed_ips"] == [{"subnet_id": sub_id, "ip_address": "10.0.0.2"}]
    assert p["status"] == "DOWN" and p["mac_address"].startswith("fa:16:3e:")
    assert p["port_security_enabled"] is True and len(p["security_groups"]) == 1
    assert p["project_id"] == project and p["binding:vnic_type"] == "normal"
    assert "binding:host_id" not in p  # admins only
    assert p["allowed_address_pairs"] == [] and p["data_plane_status"] is None
    groups = cloud.client.get(f"{V2}/ports/{p['id']}", headers=h).json()["port"]["security_groups"]
    assert groups == p["security_groups"]
    admin_view = cloud.client.get(f"{V2}/ports/{p['id']}", headers=cloud.admin).json()["port"]
    assert admin_view["binding:vif_type"] == "unbound" and admin_view["binding:host_id"] == ""
    resp = _put(cloud, h, p["id"], name="p2", admin_state_up=False, device_id="dev")
    assert resp.status_code == 200
    updated = resp.json()["port"]
    assert updated["name"] == "p2" and updated["admin_state_up"] is False
    assert updated["revision_number"] == 1
    assert cloud.client.delete(f"{V2}/ports/{p['id']}", headers=h).status_code == 204
    error(cloud.client.get(f"{V2}/ports/{p['id']}", headers=h), 404, "PortNotFound")
    # The freed address is handed out again.
    assert port(cloud, h, net_id)["fixed_ips"][0]["ip_address"] == "10.0.0.2"


def test_requested_addresses(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, sub_id = _net(cloud, h, allocation_pools=[{"start": "10.0.0.100", "end": "10.0.0.110"}])
    assert port(cloud, h, net_id)["fixed_ips"][0]["ip_address"] == "10.0.0.100"
    # Outside the pools but inside the CIDR is allowed, as in Neutron.
    p = port(cloud, h, net_id, fixed_ips=[{"ip_address": "10.0.0.50"}])
    assert p["fixed_ips"] == [{"subnet_id": sub_id, "ip_address": "10.0.0.50"}]
    taken = _post(cloud, h, network_id=net_id, fixed_ips=[{"ip_address": "10.0.0.50"}])
    error(taken, 409, "IpAddressAlreadyAllocated")
    for bad in ("10.1.0.5", "10.0.0.255", "10.0.0.0"):
        resp = _post(
            cloud, h, network_id=net_id, fixed_ips=[{"subnet_id": sub_id, "ip_address": bad}]
        )
        error(resp, 400)
    error(_post(cloud, h, network_id=net_id, fixed_ips=[{"ip_address": "nope"}]), 400)
    error(_post(cloud, h, network_id=net_id, fixed_ips=[{"subnet_id": "nope"}]), 400)
    gateway = _post(cloud, h, network_id=net_id, fixed_ips=[{"ip_address": "10.0.0.1"}])
    error(gateway, 409)
    router_port = port(
        cloud,
        cloud.admin,
        net_id,
        device_owner="network:router_interface",
        fixed_ips=[{"subnet_id": sub_id}],
    )
    assert router_port["fixed_ips"][0]["ip_address"] == "10.0.0.1"


def test_exhaustion_is_409(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, _ = _net(cloud, h, cidr="10.0.0.0/29")  # .2 to .6 are free
    for _ in range(5):
        port(cloud, h, net_id)
    error(_post(cloud, h, network_id=net_id), 409, "IpAddressGenerationFailure")


def test_concurrent_creates_get_distinct_addresses(cloud: Any) -> None:
    """16 writers (in 16 projects, so no quota lock orders them) race for one /24: every
    address goes to exactly one port, then every writer meets exhaustion as a 409."""
    net = network(cloud, cloud.admin, shared=True)
    subnet(cloud, cloud.admin, net["id"])
    admin = Context(
        user_id="u", user_domain_id="default", roles=frozenset({"admin"}), project_id="admin"
    )
    got: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def writer() -> None:
        project = uuid.uuid4().hex
        try:
            while True:
                try:
                    with cloud.db.session() as session:
                        created = ports.create_port(
                            session, admin, {"network_id": net["id"], "project_id": project}
                        )
                        address = ports.fixed_ips_of(session, [created.id])[created.id]
                except Conflict as exc:
                    assert exc.kind == "IpAddressGenerationFailure", exc.message
                    return
                with lock:
                    got.extend(a["ip_address"] for a in address)
        except BaseException as exc:  # reported below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    assert not failures, failures
    assert len(got) == 253 and len(set(got)) == 253


def test_mac_addresses(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, _ = _net(cloud, h)
    p = port(cloud, h, net_id, mac_address="FA:16:3E:12:34:56")
    assert p["mac_address"] == "fa:16:3e:12:34:56"
    error(
        _post(cloud, h, network_id=net_id, mac_address="fa:16:3e:12:34:56"), 409, "MacAddressInUse"
    )
    for bad in ("zz:16:3e:12:34:56", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", 5):
        error(_post(cloud, h, network_id=net_id, mac_address=bad), 400)
    # The same MAC on another network is fine.
    other, _ = _net(cloud, h, cidr="10.1.0.0/24")
    assert port(cloud, h, other, mac_address="fa:16:3e:12:34:56")["network_id"] == other


def test_update_fixed_ips_add_and_remove(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, sub_id = _net(cloud, h)
    p = port(cloud, h, net_id)
    first = p["fixed_ips"][0]
    resp = _put(cloud, h, p["id"], fixed_ips=[first, {"subnet_id": sub_id}])
    assert resp.status_code == 200, resp.text
    assert [f["ip_address"] for f in resp.json()["port"]["fixed_ips"]] == ["10.0.0.2", "10.0.0.3"]
    resp = _put(cloud, h, p["id"], fixed_ips=[{"subnet_id": sub_id, "ip_address": "10.0.0.3"}])
    assert resp.json()["port"]["fixed_ips"] == [{"subnet_id": sub_id, "ip_address": "10.0.0.3"}]
    # 10.0.0.2 was released.
    assert port(cloud, h, net_id)["fixed_ips"][0]["ip_address"] == "10.0.0.2"
    other = port(cloud, h, net_id)
    error(_put(cloud, h, other["id"], fixed_ips=[{"ip_address": "10.0.0.3"}]), 409)
    error(_put(cloud, h, p["id"], network_id="other"), 400)


def test_security_groups_and_port_security(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    _, hb = tenant(cloud, "beta")
    net_id, _ = _net(cloud, h)
    p = port(cloud, h, net_id)
    default_group = p["security_groups"][0]
    bare = port(cloud, h, net_id, security_groups=[])
    assert bare["security_groups"] == []
    dhcp = port(cloud, cloud.admin, net_id, device_owner="network:dhcp")
    assert dhcp["security_groups"] == []
    error(
        _put(cloud, h, p["id"], port_security_enabled=False),
        409,
        "PortSecurityPortHasSecurityGroup",
    )
    resp = _put(cloud, h, p["id"], port_security_enabled=False, security_groups=[])
    assert resp.status_code == 200 and resp.json()["port"]["port_security_enabled"] is False
    error(_put(cloud, h, p["id"], security_groups=[default_group]), 400)
    insecure = _post(
        cloud, h, network_id=net_id, port_security_enabled=False, security_groups=[default_group]
    )
    error(insecure, 400)
    pairs = _post(
        cloud,
        h,
        network_id=net_id,
        port_security_enabled=False,
        allowed_address_pairs=[{"ip_address": "10.9.9.9"}],
    )
    error(pairs, 409)
    # Another project's group is not found.
    other_net, _ = _net(cloud, hb)
    other_group = port(cloud, hb, other_net)["security_groups"][0]
    error(_put(cloud, h, bare["id"], security_groups=[other_group]), 404, "SecurityGroupNotFound")
    error(_put(cloud, h, bare["id"], security_groups=[str(uuid.uuid4())]), 404)
    resp = _put(cloud, h, bare["id"], security_groups=[default_group])
    assert resp.json()["port"]["security_groups"] == [default_group]


def test_address_pair_without_mac_takes_the_ports_mac(cloud: Any) -> None:
    """Neutron stores a pair given without mac_address with the port's MAC and shows it;
    clients that compare pairs (Terraform, Ansible's port module) read that back."""
    _, h = tenant(cloud, "pairs-mac")
    net_id, _ = _net(cloud, h)
    p = port(cloud, h, net_id, allowed_address_pairs=[{"ip_address": "10.0.0.200"}])
    mac = p["mac_address"]
    assert p["allowed_address_pairs"] == [{"ip_address": "10.0.0.200", "mac_address": mac}]
    shown = cloud.client.get(f"{V2}/ports/{p['id']}", headers=h).json()["port"]
    assert shown["allowed_address_pairs"] == p["allowed_address_pairs"]
    resp = _put(
        cloud,
        h,
        p["id"],
        allowed_address_pairs=[
            {"ip_address": "10.0.0.0/28"},
            {"ip_address": "10.0.0.201", "mac_address": "fa:16:3e:aa:bb:cc"},
        ],
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["port"]["allowed_address_pairs"] == [
        {"ip_address": "10.0.0.0/28", "mac_address": mac},
        {"ip_address": "10.0.0.201", "mac_address": "fa:16:3e:aa:bb:cc"},
    ]
    # The same pair twice, once with the port's MAC spelled out, is a duplicate.
    twice = [{"ip_address": "10.0.0.9"}, {"ip_address": "10.0.0.9", "mac_address": mac}]
    error(_put(cloud, h, p["id"], allowed_address_pairs=twice), 400)


def test_address_pairs_dhcp_options_and_bindings(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, _ = _net(cloud, h)
    p = port(
        cloud,
        h,
        net_id,
        allowed_address_pairs=[
            {"ip_address": "10.0.0.0/28"},
            {"ip_address": "10.9.9.9", "mac_address": "fa:16:3e:aa:bb:cc"},
        ],
        extra_dhcp_opts=[{"opt_name": "bootfile-name", "opt_value": "pxelinux.0"}],
        **{"binding:vnic_type": "normal"},
    )
    assert p["allowed_address_pairs"][1] == {
        "ip_address": "10.9.9.9",
        "mac_address": "fa:16:3e:aa:bb:cc",
    }
    assert p["extra_dhcp_opts"] == [
        {"opt_name": "bootfile-name", "opt_value": "pxelinux.0", "ip_version": 4}
    ]
    error(
        _post(
            cloud,
            h,
            network_id=net_id,
            allowed_address_pairs=[{"mac_address": "fa:16:3e:00:00:09"}],
        ),
        400,
    )
    error(_post(cloud, h, network_id=net_id, **{"binding:host_id": "host1"}), 403)
    error(_put(cloud, h, p["id"], **{"binding:profile": {"a": 1}}), 403)
    error(_post(cloud, h, network_id=net_id, **{"binding:vnic_type": "weird"}), 400)
    resp = _put(
        cloud, cloud.admin, p["id"], **{"binding:host_id": "host1", "binding:profile": {"a": 1}}
    )
    assert resp.status_code == 200
    view = resp.json()["port"]
    assert view["binding:host_id"] == "host1" and view["binding:profile"] == {"a": 1}
    listed = cloud.client.get(f"{V2}/ports?binding:host_id=host1", headers=cloud.admin).json()
    assert [x["id"] for x in listed["ports"]] == [p["id"]]


def test_router_interface_ports_are_not_deleted_directly(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, sub_id = _net(cloud, h)
    rp = port(
        cloud,
        cloud.admin,
        net_id,
        device_owner="network:router_interface",
        device_id="r1",
        fixed_ips=[{"subnet_id": sub_id}],
    )
    error(
        cloud.client.delete(f"{V2}/ports/{rp['id']}", headers=cloud.admin), 409, "ServicePortInUse"
    )


def test_list_filters(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, sub_id = _net(cloud, h)
    other_net, other_sub = _net(cloud, h, cidr="10.1.0.0/24")
    a = port(cloud, h, net_id, device_id="vm-a", device_owner="compute:nova")
    b = port(cloud, h, net_id)
    c = port(cloud, h, other_net, fixed_ips=[{"ip_address": "10.1.0.22"}])

    def ids(query: str) -> set[str]:
        resp = cloud.client.get(f"{V2}/ports?{query}", headers=h)
        assert resp.status_code == 200, resp.text
        return {x["id"] for x in resp.json()["ports"]}

    assert ids("device_id=vm-a") == {a["id"]}
    assert ids("device_owner=compute:nova") == {a["id"]}
    assert ids(f"network_id={net_id}") == {a["id"], b["id"]}
    assert ids("fixed_ips=ip_address%3D10.0.0.3") == {b["id"]}
    assert ids(f"fixed_ips=subnet_id%3D{other_sub}") == {c["id"]}
    assert ids("fixed_ips=ip_address_substr%3D0.22") == {c["id"]}
    assert ids(f"fixed_ips=subnet_id%3D{sub_id}&fixed_ips=ip_address%3D10.1.0.22") == set()
    assert ids(f"mac_address={a['mac_address']}") == {a["id"]}
    fields = cloud.client.get(f"{V2}/ports?fields=id&fields=mac_address", headers=h).json()
    assert all(set(x) == {"id", "mac_address"} for x in fields["ports"])
    error(cloud.client.get(f"{V2}/ports?fixed_ips=bogus", headers=h), 400)


def test_isolation(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    _, hb = tenant(cloud, "beta")
    net_id, _ = _net(cloud, h)
    p = port(cloud, h, net_id)
    assert cloud.client.get(f"{V2}/ports", headers=hb).json()["ports"] == []
    error(cloud.client.get(f"{V2}/ports/{p['id']}", headers=hb), 404)
    error(_put(cloud, hb, p["id"], name="x"), 404)
    error(cloud.client.delete(f"{V2}/ports/{p['id']}", headers=hb), 404)
    error(_post(cloud, hb, network_id=net_id), 404, "NetworkNotFound")
    # On a shared network: the other project may create plain ports, not choose addresses.
    shared = network(cloud, cloud.admin, shared=True)
    subnet(cloud, cloud.admin, shared["id"])
    mine = port(cloud, hb, shared["id"])
    error(_post(cloud, hb, network_id=shared["id"], fixed_ips=[{"ip_address": "10.0.0.50"}]), 403)
    error(_post(cloud, hb, network_id=shared["id"], mac_address="fa:16:3e:00:00:01"), 403)
    # The network's owner sees ports on it.
    seen = cloud.client.get(f"{V2}/ports?network_id={shared['id']}", headers=cloud.admin).json()
    assert [x["id"] for x in seen["ports"]] == [mine["id"]]


def test_bulk_ports_all_or_nothing(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, _ = _net(cloud, h)
    resp = cloud.client.post(
        f"{V2}/ports",
        json={"ports": [{"network_id": net_id}, {"network_id": net_id, "mac_address": "bad"}]},
        headers=h,
    )
    error(resp, 400)
    assert cloud.client.get(f"{V2}/ports", headers=h).json()["ports"] == []
    resp = cloud.client.post(
        f"{V2}/ports", json={"ports": [{"network_id": net_id}, {"network_id": net_id}]}, headers=h
    )
    assert resp.status_code == 201
    assert [x["fixed_ips"][0]["ip_address"] for x in resp.json()["ports"]] == [
        "10.0.0.2",
        "10.0.0.3",
    ]


def test_concurrent_fixed_ip_updates_get_distinct_addresses(cloud: Any) -> None:
    """Ports that each ask for one more address at the same time all get different ones."""
    _, h = tenant(cloud, "alpha")
    net_id, sub_id = _net(cloud, h)
    made = [port(cloud, h, net_id) for _ in range(8)]
    results: list[Any] = []
    lock = threading.Lock()

    def add_address(p: dict[str, Any]) -> None:
        resp = _put(cloud, h, p["id"], fixed_ips=[*p["fixed_ips"], {"subnet_id": sub_id}])
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=add_address, args=(p,)) for p in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    addresses = [f["ip_address"] for r in results for f in r.json()["port"]["fixed_ips"]]
    assert len(addresses) == 16 and len(set(addresses)) == 16


def test_only_admins_change_a_mac(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, _ = _net(cloud, h)
    p = port(cloud, h, net_id)
    other = port(cloud, h, net_id)
    error(_put(cloud, h, p["id"], mac_address="fa:16:3e:00:00:42"), 403)
    resp = _put(cloud, cloud.admin, p["id"], mac_address="fa:16:3e:00:00:42")
    assert resp.json()["port"]["mac_address"] == "fa:16:3e:00:00:42"
    clash = _put(cloud, cloud.admin, other["id"], mac_address="fa:16:3e:00:00:42")
    error(clash, 409, "MacAddressInUse")


def test_slaac_subnets_give_every_port_its_eui64_address(cloud: Any) -> None:
    _, h = tenant(cloud, "alpha")
    net_id, v4 = _net(cloud, h)
    v6 = subnet(
        cloud, h, net_id, cidr="fd00:2::/64", ipv6_ra_mode="slaac", ipv6_address_mode="slaac"
    )["id"]
    p = port(cloud, h, net_id, mac_address="fa:16:3e:00:00:02", fixed_ips=[{"subnet_id": v4}])
    assert p["fixed_ips"] == [
        {"subnet_id": v4, "ip_address": "10.0.0.2"},
        {"subnet_id": v6, "ip_address": "fd00:2::f816:3eff:fe00:2"},
    ]
    chosen = _post(cloud, h, network_id=net_id, fixed_ips=[{"ip_address": "fd00:2::99"}])
    error(chosen, 400, "AllocationOnAutoAddressSubnet")
    # Removing the SLAAC address by an update keeps it removed.
    resp = _put(cloud, h, p["id"], fixed_ips=[{"subnet_id": v4, "ip_address": "10.0.0.2"}])
    assert resp.json()["port"]["fixed_ips"] == [{"subnet_id": v4, "ip_address": "10.0.0.2"}]

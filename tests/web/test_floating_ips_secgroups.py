"""The floating IPs and security groups pages in process: allocate, associate with a
server's port (server first, then its address), disassociate and release; rules added and
deleted; Neutron's refusals (quota, bad rules, the default group) in its words in place."""

from __future__ import annotations

import re
from typing import Any

from netpages import alert, get, member, neutron_error, post, public_network

from netapi import V2, network, subnet
from visitor import Visitor, create_server

FIPS = "/project/floating-ips"


def test_allocate_associate_disassociate_release(
    visitor: Visitor, cloud: Any, image_id: str
) -> None:
    public = public_network(cloud)
    h = member(cloud, visitor)
    net = network(cloud, h, name="inner")
    sub = subnet(cloud, h, net["id"], "10.40.0.0/24")
    resp = cloud.client.post(
        f"{V2}/routers",
        json={"router": {"name": "r1", "external_gateway_info": {"network_id": public["id"]}}},
        headers=h,
    )
    router_id = resp.json()["router"]["id"]
    cloud.client.put(
        f"{V2}/routers/{router_id}/add_router_interface", json={"subnet_id": sub["id"]}, headers=h
    )
    server_id = create_server(cloud, h, image_id, "web-vm", networks=[{"uuid": net["id"]}])
    (port,) = get(cloud, h, f"ports?device_id={server_id}").json()["ports"]
    fixed = port["fixed_ips"][0]["ip_address"]

    assert post(visitor, FIPS, network_id=public["id"]).status_code == 303
    (fip,) = get(cloud, h, "floatingips").json()["floatingips"]
    address = fip["floating_ip_address"]
    page = visitor.http.get(FIPS).text
    assert f"<td>{address}</td>" in page and "<td>public</td>" in page
    assert '<span class="status status-down">DOWN</span>' in page
    # Associate: the server is chosen first, then one of its addresses.
    choose = visitor.http.get(f"{FIPS}/{fip['id']}/associate")
    assert (
        choose.status_code == 200 and f'<option value="{server_id}">web-vm</option>' in choose.text
    )
    ports = visitor.http.get(f"{FIPS}/{fip['id']}/associate?server_id={server_id}").text
    assert f'<option value="{port["id"]} {fixed}">{fixed}</option>' in ports
    resp = post(
        visitor, f"{FIPS}/{fip['id']}/associate", port=f"{port['id']} {fixed}", server_id=server_id
    )
    assert resp.status_code == 303, resp.text
    shown = get(cloud, h, f"floatingips/{fip['id']}").json()["floatingip"]
    assert (shown["port_id"], shown["fixed_ip_address"]) == (port["id"], fixed)
    # The rows (the 2 s poll) name the server, from Nova.
    poll = re.search(r'hx-get="([^"]+)" hx-trigger="every 2s"', page)
    assert poll, page
    rows = visitor.http.get(poll.group(1)).text
    assert f'href="/project/instances/{server_id}">web-vm</a>' in rows
    assert f"<td>{fixed}</td>" in rows and "<nav" not in rows
    assert f"Disassociate {address}" in rows and f"Release {address}" not in rows
    assert post(visitor, f"{FIPS}/{fip['id']}/disassociate").status_code == 303
    assert get(cloud, h, f"floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None
    assert post(visitor, f"{FIPS}/{fip['id']}/release").status_code == 303
    assert get(cloud, h, "floatingips").json()["floatingips"] == []
    assert "No floating IPs in this project yet." in visitor.http.get(FIPS).text


def test_the_floating_ip_quota_is_neutrons_words(visitor: Visitor, cloud: Any) -> None:
    public = public_network(cloud)
    h = member(cloud, visitor)
    project = cloud.boot.demo_project_id
    resp = cloud.client.put(
        f"{V2}/quotas/{project}", json={"quota": {"floatingip": 0}}, headers=cloud.admin
    )
    assert resp.status_code == 200, resp.text
    direct = cloud.client.post(
        f"{V2}/floatingips", json={"floatingip": {"floating_network_id": public["id"]}}, headers=h
    )
    page = post(visitor, FIPS, network_id=public["id"])
    assert page.status_code == direct.status_code == 409
    assert alert(page.text) == neutron_error(direct)
    assert "<h1>Floating IPs</h1>" in page.text


def test_another_projects_floating_ip_is_neutrons_404(visitor: Visitor, cloud: Any) -> None:
    public = public_network(cloud)
    resp = cloud.client.post(
        f"{V2}/floatingips",
        json={"floatingip": {"floating_network_id": public["id"]}},
        headers=cloud.admin,
    )
    fip = resp.json()["floatingip"]
    member(cloud, visitor)
    page = visitor.http.get(f"{FIPS}/{fip['id']}/associate")
    assert page.status_code == 404 and fip["floating_ip_address"] not in page.text
    assert post(visitor, f"{FIPS}/{fip['id']}/release").status_code == 404
    assert get(cloud, cloud.admin, f"floatingips/{fip['id']}").status_code == 200


def test_security_group_rules_add_delete_and_refusals(visitor: Visitor, cloud: Any) -> None:
    h = member(cloud, visitor)
    resp = post(visitor, "/project/security-groups", name="web", description="front ends")
    assert resp.status_code == 303, resp.text
    group_id = resp.headers["location"].rsplit("/", 1)[1]
    path = f"/project/security-groups/{group_id}"
    rule = {
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": "22",
        "port_range_max": "22",
        "remote_ip_prefix": "192.0.2.0/24",
    }
    assert post(visitor, f"{path}/rules", **rule).status_code == 303
    rules = get(cloud, h, f"security-group-rules?security_group_id={group_id}").json()
    (ssh,) = [r for r in rules["security_group_rules"] if r["direction"] == "ingress"]
    assert (ssh["protocol"], ssh["port_range_min"], ssh["port_range_max"]) == ("tcp", 22, 22)
    assert ssh["remote_ip_prefix"] == "192.0.2.0/24"
    page = visitor.http.get(path).text
    assert re.search(
        rf'<tr id="rule-{ssh["id"]}">\s*<td>ingress</td>\s*<td>IPv4</td>\s*<td>tcp</td>\s*'
        r"<td>22</td>\s*<td>192.0.2.0/24</td>",
        page,
    ), page
    # A rule with the other group as its remote, and an impossible port range: Neutron's words.
    default = next(
        g
        for g in get(cloud, h, "security-groups").json()["security_groups"]
        if g["name"] == "default"
    )
    remote = {**rule, "remote_ip_prefix": "", "remote_group_id": default["id"], "protocol": "udp"}
    assert post(visitor, f"{path}/rules", **remote).status_code == 303
    assert "<td>group default</td>" in visitor.http.get(path).text
    bad = {**rule, "port_range_min": "90", "port_range_max": "80"}
    direct = cloud.client.post(
        f"{V2}/security-group-rules",
        json={
            "security_group_rule": {
                "security_group_id": group_id,
                "direction": "ingress",
                "ethertype": "IPv4",
                "protocol": "tcp",
                "port_range_min": 90,
                "port_range_max": 80,
                "remote_ip_prefix": "192.0.2.0/24",
            }
        },
        headers=h,
    )
    page = post(visitor, f"{path}/rules", **bad)
    assert page.status_code == direct.status_code == 400
    assert alert(page.text) == neutron_error(direct)
    assert 'name="port_range_min" value="90"' in page.text  # the form keeps what was typed
    assert post(visitor, f"{path}/rules/{ssh['id']}/delete").status_code == 303
    assert f'id="rule-{ssh["id"]}"' not in visitor.http.get(path).text
    # The default group cannot be deleted: Neutron says so on its page.
    default_path = f"/project/security-groups/{default['id']}"
    page = post(visitor, f"{default_path}/delete")
    direct = cloud.client.delete(f"{V2}/security-groups/{default['id']}", headers=h)
    assert page.status_code == direct.status_code == 409
    assert alert(page.text) == neutron_error(direct)
    assert post(visitor, f"{path}/delete").status_code == 303
    assert get(cloud, h, f"security-groups/{group_id}").status_code == 404
    assert ">web</a>" not in visitor.http.get("/project/security-groups").text


def test_another_projects_security_group_is_neutrons_404(visitor: Visitor, cloud: Any) -> None:
    resp = cloud.client.post(
        f"{V2}/security-groups",
        json={"security_group": {"name": "admins-secret-group"}},
        headers=cloud.admin,
    )
    group_id = resp.json()["security_group"]["id"]
    h = member(cloud, visitor)
    page = visitor.http.get(f"/project/security-groups/{group_id}")
    direct = get(cloud, h, f"security-groups/{group_id}")
    assert page.status_code == direct.status_code == 404
    assert neutron_error(direct) in page.text and "admins-secret-group" not in page.text
    assert "admins-secret-group" not in visitor.http.get("/project/security-groups").text


def test_without_an_external_network_there_is_nothing_to_allocate_from(
    visitor: Visitor, cloud: Any
) -> None:
    member(cloud, visitor)
    page = visitor.http.get(FIPS).text
    assert "No external network: floating IPs come from one" in page
    assert "Allocate IP" not in page

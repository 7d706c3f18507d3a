"""The networks and routers pages in process: what they create is what Neutron then lists,
Neutron's refusals are shown in place in its words, posts need the CSRF token, and another
project's resources are Neutron's 404."""

from __future__ import annotations

from typing import Any

from netpages import alert, get, member, neutron_error, post, public_network

from apihelpers import ADMIN_PASSWORD
from netapi import V2, network, subnet
from visitor import Visitor


def test_network_with_subnets_create_add_delete(visitor: Visitor, cloud: Any) -> None:
    h = member(cloud, visitor)
    resp = post(
        visitor,
        "/project/networks",
        name="web-net",
        subnet_name="web-sub",
        cidr="10.20.0.0/24",
        ip_version="4",
        enable_dhcp="on",
        dns_nameservers="192.0.2.53, 192.0.2.54",
    )
    assert resp.status_code == 303, resp.text
    net_id = resp.headers["location"].rsplit("/", 1)[1]
    (made,) = get(cloud, h, f"subnets?network_id={net_id}").json()["subnets"]
    assert (made["name"], made["cidr"], made["enable_dhcp"]) == ("web-sub", "10.20.0.0/24", True)
    assert made["dns_nameservers"] == ["192.0.2.53", "192.0.2.54"]
    listed = visitor.http.get("/project/networks").text
    assert f'<a href="/project/networks/{net_id}">web-net</a>' in listed
    assert '<span class="muted">web-sub:</span> 10.20.0.0/24' in listed
    # A second subnet without DHCP and without a gateway.
    path = f"/project/networks/{net_id}"
    resp = post(visitor, f"{path}/subnets", cidr="10.21.0.0/24", ip_version="4", gateway_ip="none")
    assert resp.status_code == 303, resp.text
    subnets = get(cloud, h, f"subnets?network_id={net_id}").json()["subnets"]
    second = next(s for s in subnets if s["cidr"] == "10.21.0.0/24")
    assert second["gateway_ip"] is None and second["enable_dhcp"] is False
    # An overlapping one is Neutron's refusal, in its words, on the network's page.
    direct = cloud.client.post(
        f"{V2}/subnets",
        json={"subnet": {"network_id": net_id, "cidr": "10.20.0.128/25", "ip_version": 4}},
        headers=h,
    )
    page = post(visitor, f"{path}/subnets", cidr="10.20.0.128/25", ip_version="4")
    assert page.status_code == direct.status_code == 400
    assert alert(page.text) == neutron_error(direct)
    assert "<h1>web-net</h1>" in page.text and 'value="10.20.0.128/25"' in page.text  # kept
    # The detail page lists both subnets and the DHCP port Neutron made.
    page = visitor.http.get(path).text
    assert "10.20.0.0/24" in page and "10.21.0.0/24" in page
    resp = post(visitor, f"{path}/subnets/{second['id']}/delete")
    assert resp.status_code == 303
    assert len(get(cloud, h, f"subnets?network_id={net_id}").json()["subnets"]) == 1
    assert post(visitor, f"{path}/delete").status_code == 303
    assert get(cloud, h, f"networks/{net_id}").status_code == 404
    assert net_id not in visitor.http.get("/project/networks").text


def test_a_refused_first_subnet_leaves_the_network_and_says_why(
    visitor: Visitor, cloud: Any
) -> None:
    h = member(cloud, visitor)
    page = post(visitor, "/project/networks", name="half", cidr="not-a-cidr", ip_version="4")
    assert page.status_code == 400
    assert alert(page.text).startswith("The network was created; its subnet was refused: ")
    assert "not-a-cidr" in alert(page.text)
    (half,) = [n for n in get(cloud, h, "networks").json()["networks"] if n["name"] == "half"]
    assert half["subnets"] == []


def test_networks_filter_by_label_with_neutrons_tags(visitor: Visitor, cloud: Any) -> None:
    h = member(cloud, visitor)
    network(cloud, h, name="tagged", tags=["web"])
    network(cloud, h, name="plain")
    page = visitor.http.get("/project/networks?tag=web").text
    assert ">tagged</a>" in page and ">plain</a>" not in page
    assert '<span class="label">web</span>' in page
    # Labels set on the network's page are Neutron's tags.
    plain = next(n for n in get(cloud, h, "networks").json()["networks"] if n["name"] == "plain")
    resp = post(visitor, f"/project/networks/{plain['id']}/labels", labels="web, env/prod")
    assert resp.status_code == 303, resp.text
    tags = get(cloud, h, f"networks/{plain['id']}").json()["network"]["tags"]
    assert sorted(tags) == ["env/prod", "web"]
    page = visitor.http.get("/project/networks?tag=web").text
    assert ">tagged</a>" in page and ">plain</a>" in page
    assert post(visitor, f"/project/networks/{plain['id']}/labels", labels="").status_code == 303
    assert get(cloud, h, f"networks/{plain['id']}").json()["network"]["tags"] == []


def test_router_gateway_interfaces_and_neutrons_words(visitor: Visitor, cloud: Any) -> None:
    public = public_network(cloud)
    h = member(cloud, visitor)
    net = network(cloud, h, name="inner")
    sub = subnet(cloud, h, net["id"], "10.30.0.0/24", name="inner-sub")
    page = visitor.http.get("/project/routers").text
    assert f'<option value="{public["id"]}">public</option>' in page
    resp = post(visitor, "/project/routers", name="r1", network_id=public["id"])
    assert resp.status_code == 303, resp.text
    router_id = resp.headers["location"].rsplit("/", 1)[1]
    path = f"/project/routers/{router_id}"
    shown = get(cloud, h, f"routers/{router_id}").json()["router"]
    assert shown["external_gateway_info"]["network_id"] == public["id"]
    page = visitor.http.get(path).text
    gw_ip = shown["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    assert f">public</a>, {gw_ip}; SNAT on." in page
    assert f'<option value="{sub["id"]}">inner-sub (10.30.0.0/24)</option>' in page
    assert post(visitor, f"{path}/interfaces", subnet_id=sub["id"]).status_code == 303
    page = visitor.http.get(path).text
    assert "<td>10.30.0.1</td>" in page and "Remove interface inner-sub" in page
    # Deleting a router with an interface: Neutron's 409, in its words, on the router's page.
    page = post(visitor, f"{path}/delete")
    assert page.status_code == 409
    direct = cloud.client.delete(f"{V2}/routers/{router_id}", headers=h)
    assert direct.status_code == 409 and alert(page.text) == neutron_error(direct)
    assert post(visitor, f"{path}/interfaces/remove", subnet_id=sub["id"]).status_code == 303
    assert post(visitor, f"{path}/gateway/clear").status_code == 303
    assert get(cloud, h, f"routers/{router_id}").json()["router"]["external_gateway_info"] is None
    assert "No external gateway." in visitor.http.get(path).text
    # The gateway can only be on an external network: Neutron says so.
    page = post(visitor, f"{path}/gateway", network_id=net["id"])
    assert page.status_code == 400 and net["id"] in alert(page.text)
    assert post(visitor, f"{path}/gateway", network_id=public["id"]).status_code == 303
    assert post(visitor, f"{path}/delete").status_code == 303
    assert get(cloud, h, f"routers/{router_id}").status_code == 404
    assert router_id not in visitor.http.get("/project/routers").text


def test_posts_without_the_csrf_token_change_nothing(visitor: Visitor, cloud: Any) -> None:
    h = member(cloud, visitor)
    net = network(cloud, h, name="keep")
    for path, fields in (
        ("/project/networks", {"name": "sneaky"}),
        (f"/project/networks/{net['id']}/delete", {}),
        ("/project/routers", {"name": "sneaky"}),
        ("/project/security-groups", {"name": "sneaky"}),
        ("/project/floating-ips", {"network_id": net["id"]}),
    ):
        resp = visitor.http.post(path, data=fields)
        assert resp.status_code == 403, (path, resp.text)
        assert "CSRF" in resp.text
        forged = visitor.http.post(path, data={**fields, "csrf_token": "0" * 64})
        assert forged.status_code == 403, path
    assert [n["name"] for n in get(cloud, h, "networks").json()["networks"]] == ["keep"]
    assert get(cloud, h, "routers").json()["routers"] == []
    groups = get(cloud, h, "security-groups").json()["security_groups"]
    assert "sneaky" not in [g["name"] for g in groups]


def test_another_projects_network_and_router_are_neutrons_404(visitor: Visitor, cloud: Any) -> None:
    net = network(cloud, cloud.admin, name="admins-secret-net")
    resp = cloud.client.post(
        f"{V2}/routers", json={"router": {"name": "admins-secret-router"}}, headers=cloud.admin
    )
    router_id = resp.json()["router"]["id"]
    h = member(cloud, visitor)
    for path, api in (
        (f"/project/networks/{net['id']}", f"networks/{net['id']}"),
        (f"/project/routers/{router_id}", f"routers/{router_id}"),
    ):
        page = visitor.http.get(path)
        direct = get(cloud, h, api)
        assert page.status_code == direct.status_code == 404, path
        assert neutron_error(direct) in page.text and "admins-secret" not in page.text
    # Nor can the member delete them through the dashboard.
    assert post(visitor, f"/project/networks/{net['id']}/delete").status_code == 404
    assert post(visitor, f"/project/routers/{router_id}/delete").status_code == 404
    assert get(cloud, cloud.admin, f"networks/{net['id']}").status_code == 200
    listed = visitor.http.get("/project/networks").text + visitor.http.get("/project/routers").text
    assert "admins-secret" not in listed


def test_an_id_in_the_page_path_cannot_reach_another_api_path(visitor: Visitor, cloud: Any) -> None:
    member(cloud, visitor)
    network(cloud, {"X-Auth-Token": visitor.session_token}, name="mine")
    for area in ("networks", "routers", "security-groups"):
        for odd in ("x%3Ffields%3Did", "%2E%2E"):
            page = visitor.http.get(f"/project/{area}/{odd}")
            assert page.status_code == 404, (area, odd, page.text)
            assert "not shown</h1>" in page.text, page.text  # Neutron's 404, in place
            assert "mine" not in page.text


def test_an_admins_pages_show_its_project_not_every_project(visitor: Visitor, cloud: Any) -> None:
    """Neutron lists every project's resources to an admin; the project's pages show the
    project's own, plus the shared and external networks (as Horizon's project view)."""
    public = public_network(cloud)
    shared = network(cloud, cloud.admin, name="admins-shared", shared=True)
    h = member(cloud, visitor)
    network(cloud, h, name="demo-net")
    cloud.client.post(f"{V2}/routers", json={"router": {"name": "demo-router"}}, headers=h)
    cloud.client.post(
        f"{V2}/security-groups", json={"security_group": {"name": "demo-group"}}, headers=h
    )
    fip = cloud.client.post(
        f"{V2}/floatingips", json={"floatingip": {"floating_network_id": public["id"]}}, headers=h
    ).json()["floatingip"]
    admin = Visitor(cloud.client)
    admin.sign_in("admin", ADMIN_PASSWORD)
    with admin.http:
        pages = {
            area: admin.http.get(f"/project/{area}").text
            for area in ("networks", "routers", "security-groups", "floating-ips")
        }
    assert ">public</a>" in pages["networks"] and ">admins-shared</a>" in pages["networks"]
    assert "demo-net" not in pages["networks"]
    assert "demo-router" not in pages["routers"]
    assert "demo-group" not in pages["security-groups"]
    assert fip["floating_ip_address"] not in pages["floating-ips"]
    # The member sees its own, and the admin's shared and external networks.
    page = visitor.http.get("/project/networks").text
    assert all(f">{n}</a>" in page for n in ("demo-net", "public", "admins-shared"))
    assert shared["id"] in page
    assert fip["floating_ip_address"] in visitor.http.get("/project/floating-ips").text


def test_router_labels_are_neutrons_tags_and_filter_the_list(visitor: Visitor, cloud: Any) -> None:
    h = member(cloud, visitor)
    made = {
        name: post(visitor, "/project/routers", name=name).headers["location"]
        for name in ("labelled-r", "other-r")
    }
    path = made["labelled-r"]
    router_id = path.rsplit("/", 1)[1]
    page = visitor.http.get(path).text
    assert 'aria-label="Labels"' in page and "New label" in page
    assert post(visitor, f"{path}/labels", label="team / web").status_code == 303
    assert get(cloud, h, f"routers/{router_id}").json()["router"]["tags"] == ["team:web"]
    assert 'aria-label="Remove label team:web"' in visitor.http.get(path).text
    listed = visitor.http.get("/project/routers", params={"tag": "team/web"}).text
    assert ">labelled-r</a>" in listed and ">other-r</a>" not in listed
    assert '<span class="label">team:web</span>' in listed
    assert ">other-r</a>" in visitor.http.get("/project/routers").text
    assert "No routers match the filter." in visitor.http.get("/project/routers?tag=x").text
    empty = post(visitor, f"{path}/labels", label=" ")
    assert empty.status_code == 400 and alert(empty.text) == "A label cannot be empty."
    assert post(visitor, f"{path}/labels/remove", label="team:web").status_code == 303
    assert get(cloud, h, f"routers/{router_id}").json()["router"]["tags"] == []

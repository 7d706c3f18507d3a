"""Admin hosts page: capacity, heartbeat and servers of each host, enable/disable through
os-services, evacuation of a down host's servers, and a member refused in the API's
words with no Admin navigation, in process."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from sqlalchemy import update

from kumo.db import models as m

from visitor import SERVERS, Visitor, create_server, form_csrf


def _host(cloud: Any, name: str, heartbeat: dt.datetime | None) -> str:
    host_id = str(uuid.uuid4())
    with cloud.db.session() as session:
        session.add(
            m.Host(
                id=host_id,
                name=name,
                enabled=True,
                last_heartbeat_at=heartbeat,
                agent_api_versions=["v1"],
                capabilities={"hypervisor": {"driver": "fake"}},
                inventory={"vcpus": 8, "memory_mb": 8192, "disk_gb": 100},
            )
        )
    return host_id


def _on_host(cloud: Any, server_id: str, host_id: str, name: str) -> None:
    with cloud.db.session() as session:
        session.execute(
            update(m.Instance)
            .where(m.Instance.id == server_id)
            .values(host_id=host_id, vm_state="active")
        )


def test_hosts_show_state_capacity_heartbeat_and_servers(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    now = dt.datetime.now(dt.UTC)
    up = _host(cloud, "hv-up", now)
    _host(cloud, "hv-down", now - dt.timedelta(hours=2))
    server_id = create_server(cloud, cloud.admin, image_id, "on-hv-up")
    _on_host(cloud, server_id, up, "hv-up")
    page = admin_visitor.http.get("/admin/hosts")
    assert page.status_code == 200, page.text
    sections = dict(
        re.findall(r'<h2 id="host-\d+-title">([^<]+)</h2>(.*?)</section>', page.text, re.S)
    )
    assert set(sections) == {"hv-down", "hv-up"}
    assert ">up</span>" in sections["hv-up"] and ">down</span>" in sections["hv-down"]
    assert re.search(r">\d+s ago</time>", sections["hv-up"])
    assert ">2h ago</time>" in sections["hv-down"]
    assert "vCPUs: 0 used, 8 free of 8" in sections["hv-down"]
    (hv,) = [
        h
        for h in cloud.client.get(
            "/compute/v2.1/os-hypervisors/detail", headers=cloud.admin
        ).json()["hypervisors"]
        if h["hypervisor_hostname"] == "hv-down"
    ]
    used, total = hv["memory_mb_used"], hv["memory_mb"]  # reserved memory counts as used
    assert f"RAM: {used} MiB used, {total - used} MiB free of {total} MiB" in sections["hv-down"]
    assert f'href="/project/instances/{server_id}">on-hv-up</a>' in sections["hv-up"]
    assert "on-hv-up" not in sections["hv-down"]
    assert 'aria-label="Evacuate hv-down"' not in page.text  # no servers to move
    assert '<a href="/admin/hosts" aria-current="page">Hosts</a>' in page.text


def test_disable_with_a_reason_and_enable_are_os_services(
    admin_visitor: Visitor, cloud: Any
) -> None:
    _host(cloud, "hv-1", dt.datetime.now(dt.UTC))
    page = admin_visitor.http.get("/admin/hosts")
    csrf = form_csrf(page.text)
    resp = admin_visitor.http.post(
        "/admin/hosts/hv-1/disable", data={"reason": "new disks", "csrf_token": csrf}
    )
    assert resp.status_code == 303, resp.text
    (svc,) = cloud.client.get(
        "/compute/v2.1/os-services?binary=nova-compute", headers=cloud.admin
    ).json()["services"]
    assert (svc["status"], svc["disabled_reason"]) == ("disabled", "new disks")
    page = admin_visitor.http.get("/admin/hosts/rows").text
    assert "(new disks)" in page and 'aria-label="Enable hv-1"' in page
    resp = admin_visitor.http.post("/admin/hosts/hv-1/enable", data={"csrf_token": csrf})
    assert resp.status_code == 303
    (svc,) = cloud.client.get(
        "/compute/v2.1/os-services?binary=nova-compute", headers=cloud.admin
    ).json()["services"]
    assert svc["status"] == "enabled"
    # An unknown host is Nova's 404, in its words.
    resp = admin_visitor.http.post("/admin/hosts/nope/disable", data={"csrf_token": csrf})
    assert resp.status_code == 404 and "nope" in resp.text


def test_evacuating_a_down_host_asks_nova_for_each_server(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    down = _host(cloud, "hv-dead", dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    server_id = create_server(cloud, cloud.admin, image_id, "stranded")
    _on_host(cloud, server_id, down, "hv-dead")
    page = admin_visitor.http.get("/admin/hosts").text
    assert 'aria-label="Evacuate hv-dead"' in page
    resp = admin_visitor.http.post(
        "/admin/hosts/hv-dead/evacuate", data={"csrf_token": form_csrf(page)}
    )
    assert resp.status_code == 200, resp.text
    item = re.search(r'<ul aria-label="Evacuation requests">(.*?)</ul>', resp.text, re.S)
    assert item and "stranded</a>:" in item.group(1), resp.text
    # Nova's answer is shown as it is: accepted, or its refusal in its words.
    shown = cloud.client.get(f"{SERVERS}/{server_id}", headers=cloud.admin).json()["server"]
    if "evacuation accepted" in item.group(1):
        assert shown["OS-EXT-STS:task_state"] == "rebuilding" or shown["status"] != "ACTIVE"
    else:
        assert 'role="alert"' in item.group(1)


def test_a_member_gets_the_apis_403_words_and_no_admin_nav(visitor: Visitor, cloud: Any) -> None:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    nova = cloud.client.get(
        "/compute/v2.1/os-hypervisors/detail", headers=cloud.h(visitor.session_token)
    )
    assert nova.status_code == 403
    words = nova.json()["forbidden"]["message"]
    page = visitor.http.get("/admin/hosts")
    assert page.status_code == 403
    assert words.replace("'", "&#39;").replace('"', "&#34;") in page.text
    assert "Admin</h2>" not in page.text and "/admin/hosts" not in page.text.split("<main")[0]
    resp = visitor.http.post("/admin/hosts/x/disable", data={"csrf_token": visitor.page_csrf()})
    assert resp.status_code == 403

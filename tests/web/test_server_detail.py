"""The server page's sections in process, on a fake-hypervisor host: the action log with
events, the console log with its length choice, volumes, interfaces, floating IPs and
metadata (set and removed, CSRF checked), each refusal shown in its section in the API's
words."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from fakehost import SERVERS, Compute, active_server
from visitor import Visitor

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _section(v: Visitor, server_id: str, name: str, query: str = "") -> str:
    resp = v.http.get(f"/project/instances/{server_id}/section/{name}{query}", headers=HTMX)
    assert resp.status_code == 200, resp.text
    assert "<nav" not in resp.text  # a fragment, no frame
    return resp.text


def test_the_page_loads_each_section(admin_visitor: Visitor, compute: Compute, cloud: Any) -> None:
    server_id = active_server(compute, cloud.admin)
    page = admin_visitor.http.get(f"/project/instances/{server_id}").text
    for name in ("actions", "console", "volumes", "interfaces", "floating-ips", "metadata"):
        assert f'hx-get="/project/instances/{server_id}/section/{name}"' in page
    assert f'hx-get="/project/instances/{server_id}/panel"' in page


def test_action_log_shows_actions_and_their_events(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    assert compute.action(server_id, cloud.admin, {"os-stop": None}).status_code == 202
    compute.converge()
    html = _section(admin_visitor, server_id, "actions")
    assert re.search(r"<td>stop</td>.*<td>create</td>", html, re.S), html  # newest first
    assert html.count('<div class="event">') >= 2  # each action with its events


def test_console_log_with_a_length_choice(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    html = _section(admin_visitor, server_id, "console", "?length=20")
    nova = compute.action(server_id, cloud.admin, {"os-getConsoleOutput": {"length": 20}})
    assert nova.status_code == 200, nova.text
    shown = str(escape(nova.json()["output"])) or "(no output yet)"
    assert f'aria-label="Console log">{shown}</pre>' in html
    assert "<option selected>20</option>" in html
    html = _section(admin_visitor, server_id, "console", "?length=7")
    assert '<p class="alert" role="alert">Invalid console length: 7.</p>' in html
    bad = admin_visitor.http.get(f"/project/instances/{server_id}/section/console?length=x")
    assert bad.status_code == 400


def test_interfaces_volumes_and_floating_ips(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    made = cloud.client.post(
        "/network/v2.0/networks", json={"network": {"name": "net1"}}, headers=cloud.admin
    )
    net_id = made.json()["network"]["id"]
    subnet = {"subnet": {"network_id": net_id, "cidr": "10.44.0.0/24", "ip_version": 4}}
    assert cloud.client.post("/network/v2.0/subnets", json=subnet, headers=cloud.admin)
    resp = compute.create(cloud.admin, name="nic-vm", networks=[{"uuid": net_id}])
    server_id = resp.json()["server"]["id"]
    compute.converge()
    html = _section(admin_visitor, server_id, "interfaces")
    assert f"<td>{net_id}</td><td>10.44.0." in html
    assert "No volumes attached." in _section(admin_visitor, server_id, "volumes")
    assert "No floating IPs." in _section(admin_visitor, server_id, "floating-ips")


def test_metadata_set_and_removed_with_novas_words_on_refusal(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    csrf = admin_visitor.page_csrf()
    url = f"/project/instances/{server_id}/metadata"
    headers = {**HTMX, "X-CSRF-Token": csrf}
    html = admin_visitor.http.post(url, headers=headers, data={"key": "role", "value": "db"}).text
    assert "<td>role</td><td>db</td>" in html
    shown = cloud.client.get(f"{SERVERS}/{server_id}/metadata", headers=cloud.admin).json()
    assert shown["metadata"] == {"role": "db"}
    long_key = "k" * 256
    nova = cloud.client.put(
        f"{SERVERS}/{server_id}/metadata/{long_key}",
        json={"meta": {long_key: "v"}},
        headers=cloud.admin,
    )
    assert nova.status_code == 400
    html = admin_visitor.http.post(url, headers=headers, data={"key": long_key, "value": "v"}).text
    assert f'<p class="alert" role="alert">{escape(nova.json()["badRequest"]["message"])}' in html
    html = admin_visitor.http.post(url, headers=headers, data={"delete": "role"}).text
    assert "No metadata." in html
    refused = admin_visitor.http.post(url, headers=HTMX, data={"key": "x", "value": "y"})
    assert refused.status_code == 403  # no CSRF token
    shown = cloud.client.get(f"{SERVERS}/{server_id}/metadata", headers=cloud.admin).json()
    assert shown["metadata"] == {}


def test_another_projects_sections_are_novas_404(
    visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin, name="admins-vm")
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    for name in ("actions", "console", "interfaces", "metadata"):
        html = _section(visitor, server_id, name)
        assert 'role="alert"' in html and "admins-vm" not in html, (name, html)
    unknown = visitor.http.get(f"/project/instances/{server_id}/section/secrets")
    assert unknown.status_code == 404

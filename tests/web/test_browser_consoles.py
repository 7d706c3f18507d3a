"""The consoles in a real Chromium against a live `kumo up` with a real QEMU guest
(kumo-tiny): the serial console opened from the server page shows the guest's output and
carries keys to it, the graphical console (noVNC) shows the guest's screen changing, a
console URL works opened straight from the API (no dashboard session: the token is the
authorization) and only once.

The guest is the browser tests' shared one (tests/web/livecloud.py: TCG guests are slow
to boot); the consoles only read it. kumo-tiny has no shell
on ttyS0: what it prints there is "kumo-guest: alive N" every two seconds, and the keys
typed come back through the guest's tty echo, which is what the serial test reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from browser import Tab, screenshot, sign_in
from computeapi import Api
from kumoproc import Cloud
from livecloud import GUEST_NAME, SharedGuest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
REFUSED = "Not connected: the token expired or was already used."


def _console_url(cloud: Cloud, server_id: str, protocol: str) -> str:
    """A console URL from Nova's remote console API (``openstack console url show``), as
    the server's project (demo) asks for it."""
    api = Api(cloud.url, cloud.admin_password, project="demo")
    try:
        kind = "novnc" if protocol == "vnc" else "serial"
        resp = api.client.post(
            f"/compute/v2.1/servers/{server_id}/remote-consoles",
            json={"remote_console": {"protocol": protocol, "type": kind}},
            headers={"OpenStack-API-Version": "compute 2.6"},
        )
        assert resp.status_code == 200, resp.text
        return str(resp.json()["remote_console"]["url"])
    finally:
        api.close()


def open_from_server_page(page: Page, server_id: str, button: str) -> None:
    page.goto(f"/project/instances/{server_id}")
    expect(page.get_by_role("heading", name=GUEST_NAME, level=1)).to_be_visible()
    page.get_by_role("button", name=button).click()


def test_serial_console_from_the_server_page(
    shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = shared_guest.cloud, shared_guest.id
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    open_from_server_page(page, server_id, "Serial console")
    expect(page).to_have_url(re.compile(r"/console/serial\?token=[\w-]+$"))
    expect(page.get_by_role("status")).to_have_text("Connected")
    terminal = page.get_by_role("main", name="Serial console of the server")
    expect(terminal).to_contain_text("kumo-guest: alive", timeout=30_000)
    # Keys go to the guest and come back through its tty's echo.
    page.get_by_role("textbox", name="Terminal input").press_sequentially("hello-from-xterm")
    expect(terminal).to_contain_text("hello-from-xterm", timeout=30_000)
    screenshot(page, "console-serial")
    assert tab.errors() == []  # nothing refused by the page's CSP, no script error

    # The token opened one connection: the same URL again is refused, and says why.
    page.reload()
    expect(page.get_by_role("status")).to_have_text(re.compile(re.escape(REFUSED)))
    screenshot(page, "console-serial-used")

    # The server page's other button: a fresh token, the graphical console connected.
    open_from_server_page(page, server_id, "Graphical console")
    expect(page).to_have_url(re.compile(r"/console/vnc\?token=[\w-]+$"))
    expect(page.get_by_role("status")).to_have_text("Connected")


def test_graphical_console_from_the_apis_url_shows_the_screen_changing(
    shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = shared_guest.cloud, shared_guest.id
    url = _console_url(cloud, server_id, "vnc")
    assert url.startswith(f"{cloud.url}/console/vnc?token="), url
    tab = new_tab(cloud)  # never signed in: the token is the authorization
    page = tab.page
    page.goto(url)
    expect(page.get_by_role("status")).to_have_text("Connected")
    expect(page.get_by_role("button", name="Send Ctrl-Alt-Del")).to_be_enabled()
    canvas = page.get_by_role("main", name="Screen of the server").locator("canvas")
    expect(canvas).to_be_visible()
    # The guest prints "alive N" on its screen every two seconds: the canvas changes.
    page.wait_for_function(
        "() => document.querySelector('canvas').toDataURL().length > 2000", polling=500
    )
    first = page.evaluate("() => document.querySelector('canvas').toDataURL()")
    page.wait_for_function(
        "(first) => document.querySelector('canvas').toDataURL() !== first",
        arg=first,
        polling=500,
        timeout=60_000,
    )
    screenshot(page, "console-vnc")
    assert tab.errors() == []

    page.reload()
    expect(page.get_by_role("status")).to_have_text(re.compile(re.escape(REFUSED)))
    expect(page.get_by_role("button", name="Send Ctrl-Alt-Del")).to_be_disabled()
    screenshot(page, "console-vnc-used")


def _other_project_user(cloud: Cloud, name: str, password: str) -> None:
    """A member of a new project of its own, made through Keystone's API."""
    admin = Api(cloud.url, cloud.admin_password)
    try:
        keystone = admin.client
        domain = keystone.get("/identity/v3/domains", params={"name": "Default"})
        domain_id = domain.json()["domains"][0]["id"]
        project = keystone.post(
            "/identity/v3/projects", json={"project": {"name": name, "domain_id": domain_id}}
        )
        assert project.status_code == 201, project.text
        project_id = project.json()["project"]["id"]
        body = {"name": name, "password": password, "domain_id": domain_id}
        user = keystone.post("/identity/v3/users", json={"user": body})
        assert user.status_code == 201, user.text
        role = keystone.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]
        grant = keystone.put(
            f"/identity/v3/projects/{project_id}/users/{user.json()['user']['id']}"
            f"/roles/{role['id']}"
        )
        assert grant.status_code == 204, grant.text
    finally:
        admin.close()


def test_another_projects_user_gets_neither_the_server_page_nor_a_console(
    shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = shared_guest.cloud, shared_guest.id
    _other_project_user(cloud, "eve", "eve-pw")
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "eve", "eve-pw")
    not_found = f"Instance {server_id} could not be found."
    response = page.goto(f"/project/instances/{server_id}")
    assert response is not None and response.status == 404
    expect(page.get_by_text(not_found)).to_be_visible()
    screenshot(page, "console-other-project")
    # The console request itself (as the server page's form would post it): Nova's 404.
    page.goto("/project/instances")
    csrf = page.locator('meta[name="csrf-token"]').get_attribute("content")
    refused = page.request.post(
        f"/project/instances/{server_id}/console",
        form={"protocol": "vnc", "csrf_token": str(csrf)},
        max_redirects=0,
    )
    assert refused.status == 404, refused.text()
    assert not_found in refused.text()
    # A console URL the server's own project obtained, opened in eve's signed-in browser:
    # the proxy refuses her handshake, and the token stays unused for its owner.
    url = _console_url(cloud, server_id, "vnc")
    page.goto(url)
    expect(page.get_by_role("status")).to_have_text(re.compile(re.escape(REFUSED)))
    screenshot(page, "console-other-project-websocket")
    owner = new_tab(cloud)  # no session: the token is the authorization
    owner.page.goto(url)
    expect(owner.page.get_by_role("status")).to_have_text("Connected")

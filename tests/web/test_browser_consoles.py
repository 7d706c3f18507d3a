"""The consoles in a real Chromium against a live `kumo up` with a real QEMU guest
(kumo-tiny): the serial console opened from the server page shows the guest's output and
carries keys to it, the graphical console (noVNC) shows the guest's screen changing, a
console URL works opened straight from the API (no dashboard session: the token is the
authorization) and only once.

One guest serves the whole module (TCG guests are slow to boot). kumo-tiny has no shell
on ttyS0: what it prints there is "kumo-guest: alive N" every two seconds, and the keys
typed come back through the guest's tty echo, which is what the serial test reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from test_qemu_server import Guests, _require_qemu

from browser import Tab, screenshot, sign_in
from computeapi import Api
from kumoproc import Cloud, clean_env, start_cloud, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
BOOT = 240  # seconds for a TCG guest to print on its serial console
REFUSED = "Not connected: the token expired or was already used."


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cloud, str]]:
    """A live cloud and one running kumo-tiny guest that prints on its consoles."""
    _require_qemu()
    state = tmp_path_factory.mktemp("webconsole") / "state"
    cloud = start_cloud(state, env=clean_env())
    guests = Guests(state)
    api = Api(cloud.url, cloud.admin_password)
    try:
        created = api.create_server("console-vm", api.image_id())
        assert created.status_code == 202, created.text
        server_id = str(created.json()["server"]["id"])
        guests.pid(server_id)
        log = state / "agent" / "instances" / server_id / "console.log"
        wait_for(
            lambda: log.exists() and "kumo-guest: alive" in log.read_text(errors="replace"),
            BOOT,
            "the guest's first 'alive' on its serial console",
            interval=1.0,
        )
        yield cloud, server_id
    finally:
        api.close()
        cloud.stop()
        guests.cleanup()


def open_from_server_page(page: Page, server_id: str, button: str) -> None:
    page.goto(f"/project/instances/{server_id}")
    expect(page.get_by_role("heading", name="console-vm", level=1)).to_be_visible()
    page.get_by_role("button", name=button).click()


def test_serial_console_from_the_server_page(
    guest: tuple[Cloud, str], new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = guest
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
    guest: tuple[Cloud, str], new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = guest
    api = Api(cloud.url, cloud.admin_password)
    try:
        resp = api.client.post(
            f"/compute/v2.1/servers/{server_id}/remote-consoles",
            json={"remote_console": {"protocol": "vnc", "type": "novnc"}},
            headers={"OpenStack-API-Version": "compute 2.6"},
        )
        assert resp.status_code == 200, resp.text
        url = resp.json()["remote_console"]["url"]
    finally:
        api.close()
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
    guest: tuple[Cloud, str], new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = guest
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

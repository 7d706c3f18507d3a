"""Launch and run a real QEMU guest from the dashboard, in Chromium against a live `kumo up`:
the three-screen wizard, the new row turning ACTIVE without a reload, stop from the row
menu, start and delete from the server's page; and a member who is offered no admin
action and gets Nova's 403 words when posting one directly.

Both tests sign in as a member of the demo project, whose `private` network `kumo up`
seeds; one TCG guest per test (the tiny image, the smallest flavor) keeps them short.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page, expect
from test_qemu_server import Guests, _require_qemu  # the e2e tests' QEMU guard and reaper

from browser import DESKTOP, PHONE, Tab, screenshot, sign_in
from computeapi import Api
from kumoproc import Cloud, start_cloud

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
BOOT = 180_000  # ms: a TCG guest on a busy machine
MEMBER, MEMBER_PASSWORD = "mia", "mia-web-pw"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    _require_qemu()
    state = tmp_path_factory.mktemp("webservers") / "state"
    running = start_cloud(state, env=None)
    guests = Guests(state)
    try:
        _member(running)
        yield running
    finally:
        running.stop()
        guests.cleanup()


def _member(cloud: Cloud) -> None:
    """A member (role "member", not admin) of the demo project."""
    api = Api(cloud.url, cloud.admin_password)
    try:
        ident = api.client
        demo = ident.get("/identity/v3/projects", params={"name": "demo"}).json()["projects"][0]
        role = ident.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]
        user = {"name": MEMBER, "password": MEMBER_PASSWORD, "default_project_id": demo["id"]}
        made = ident.post("/identity/v3/users", json={"user": user})
        assert made.status_code == 201, made.text
        user_id = made.json()["user"]["id"]
        grant = f"/identity/v3/projects/{demo['id']}/users/{user_id}/roles/{role['id']}"
        granted = ident.put(grant)
        assert granted.status_code == 204, granted.text
    finally:
        api.close()


def _fits_a_phone(page: Page, name: str) -> None:
    """At phone width the page does not scroll sideways (tables and the request scroll
    in their own boxes); a screenshot, then back to the desktop size."""
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide at phone width"
    screenshot(page, name)
    page.set_viewport_size(DESKTOP)


def test_launch_a_guest_see_it_active_stop_start_and_delete(
    cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
    api = Api(cloud.url, MEMBER_PASSWORD, user=MEMBER, project="demo")
    tab = new_tab(cloud)
    page = tab.page
    try:
        sign_in(page, MEMBER, MEMBER_PASSWORD)
        page.get_by_role("link", name="Launch instances").click()
        # Screen 1: source and flavor, name and count.
        page.get_by_label("Image", exact=True).select_option(api.image_id())
        page.get_by_label("Flavor").select_option("1")
        page.get_by_label("Instance name").fill("web-guest")
        page.get_by_label("Count").fill("1")
        screenshot(page, "launch-1-source")
        page.get_by_role("button", name="Next").click()
        # Screen 2: the project's only network and the default group come chosen.
        expect(page.get_by_role("checkbox", name=re.compile("private"))).to_be_checked()
        expect(page.get_by_role("checkbox", name="default")).to_be_checked()
        screenshot(page, "launch-2-network")
        page.get_by_role("button", name="Next").click()
        # Screen 3: the quota preview and the request that will be sent.
        expect(page.get_by_role("table", name="Quota")).to_contain_text("Instances")
        expect(page.locator("pre.request")).to_contain_text('"max_count": 1')
        screenshot(page, "launch-3-review")
        _fits_a_phone(page, "launch-3-review-phone")
        page.get_by_role("button", name="Launch").click()

        expect(page).to_have_url(re.compile(r"/project/instances$"))
        page.evaluate("window.kumoTestMark = 'not reloaded'")
        row = page.get_by_role("row", name=re.compile("web-guest"))
        expect(row).to_contain_text("ACTIVE", timeout=BOOT)  # the poll, no reload
        assert page.evaluate("window.kumoTestMark") == "not reloaded"
        screenshot(page, "servers-active")

        # Stop from the row's menu; the row follows to SHUTOFF by itself.
        row.get_by_text("Actions").click()
        assert "Migrate" not in row.inner_text()  # a member: no admin actions
        screenshot(page, "servers-row-menu")
        row.get_by_role("button", name="Stop web-guest").click()
        expect(page.get_by_text("Stop requested for web-guest.")).to_be_visible()
        expect(row).to_contain_text("SHUTOFF", timeout=BOOT)
        assert page.evaluate("window.kumoTestMark") == "not reloaded"
        screenshot(page, "servers-shutoff")

        # Start from the server's page: its state panel updates live.
        page.get_by_role("link", name="web-guest").click()
        expect(page.get_by_role("heading", name="web-guest", level=1)).to_be_visible()
        actions = page.get_by_role("group", name="Actions")
        actions.get_by_role("button", name="Start web-guest").click()
        expect(page.locator("#server-panel")).to_contain_text("ACTIVE", timeout=BOOT)
        screenshot(page, "server-started")
        _fits_a_phone(page, "server-phone")

        # Delete, with its confirmation page.
        actions.get_by_role("link", name="Delete web-guest").click()
        page.get_by_role("button", name="Delete web-guest").click()
        expect(page).to_have_url(re.compile(r"/project/instances$"))
        expect(page.get_by_text("No instances in this project yet.")).to_be_visible(timeout=BOOT)
        screenshot(page, "servers-deleted")
        assert tab.errors() == []  # nothing refused by the CSP, no script errors
    finally:
        for server in api.servers():
            api.delete_server(server["id"])
        api.close()


def test_a_member_sees_no_admin_actions_and_gets_novas_403(
    cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
    api = Api(cloud.url, MEMBER_PASSWORD, user=MEMBER, project="demo")
    tab = new_tab(cloud)
    page = tab.page
    try:
        created = api.create_server("member-vm", api.image_id())
        assert created.status_code == 202, created.text
        server_id = created.json()["server"]["id"]
        sign_in(page, MEMBER, MEMBER_PASSWORD)
        expect(page.get_by_role("navigation", name="Main")).not_to_contain_text("Hosts")
        page.goto(f"/project/instances/{server_id}")
        panel = page.locator("#server-panel")
        expect(panel).to_contain_text("ACTIVE", timeout=BOOT)
        expect(panel.get_by_role("button", name="Stop member-vm")).to_be_visible()
        admin_only = panel.get_by_role("button", name=re.compile("Migrate|Live migrate"))
        expect(admin_only).to_have_count(0)
        # Posted directly (the URL an admin's button would use): Nova's 403, in its words.
        nova = api.client.post(f"/compute/v2.1/servers/{server_id}/action", json={"migrate": None})
        assert nova.status_code == 403
        words = nova.json()["forbidden"]["message"]
        csrf = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
        answer = page.request.post(
            f"/project/instances/{server_id}/action/migrate", form={"csrf_token": csrf}
        )
        assert answer.status == 403
        assert words in answer.text()
        page.set_content(answer.text())  # what the user would see, for the artifact
        screenshot(page, "member-migrate-403")
    finally:
        for server in api.servers():
            api.delete_server(server["id"])
        api.close()

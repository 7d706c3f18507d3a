"""Launch and run a real QEMU guest from the dashboard, in Chromium against the browser
tests' shared live `kumo up` (tests/web/livecloud.py): the three-screen wizard, the new row
turning ACTIVE without a reload, a label put on it and the list filtered by that label
(typed, and from the label tree), stop from the row menu, start and delete from the
server's page; and a member who is offered no admin action and gets Nova's 403 words
when posting one directly.

Both tests sign in as the member of the demo project, whose ``private`` network `kumo up`
seeds. The launch test's guest is its own (it is stopped and deleted); the member test
reads the shared guest, which is in the same project and is the server the label filter
must leave out.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from browser import DESKTOP, PHONE, Tab, screenshot, sign_in
from computeapi import Api
from kumoproc import Cloud
from livecloud import GUEST_NAME, MEMBER, MEMBER_PASSWORD, SharedGuest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
BOOT = 180_000  # ms: a TCG guest on a busy machine
LABEL = "team:web"  # typed "team/web": '/' is stored as ':' (kumo.web.labels)


def _fits_a_phone(page: Page, name: str) -> None:
    """At phone width the page does not scroll sideways (tables and the request scroll
    in their own boxes); a screenshot, then back to the desktop size."""
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide at phone width"
    screenshot(page, name)
    page.set_viewport_size(DESKTOP)


def _label_and_filter(page: Page, api: Api, server_id: str) -> None:
    """On the server's page: label it; then the instances list filtered by that label,
    typed and from the label tree, shows it and not the shared guest."""
    page.get_by_label("New label").fill("team/web")
    page.get_by_role("button", name="Add label").click()
    labels = page.get_by_role("list", name="Labels")
    expect(labels).to_contain_text(LABEL)
    expect(page.get_by_role("button", name=f"Remove label {LABEL}")).to_be_visible()
    screenshot(page, "labels-server")
    # What the openstack CLI shows is what the page shows.
    shown = api.client.get(
        f"/compute/v2.1/servers/{server_id}/tags",
        headers={"OpenStack-API-Version": "compute 2.26"},
    )
    assert shown.json()["tags"] == [LABEL]

    page.get_by_role("link", name="Instances").first.click()
    mine = page.get_by_role("row", name=re.compile("web-guest"))
    other = page.get_by_role("row", name=re.compile(GUEST_NAME))
    expect(other).to_be_visible()  # unfiltered, the project's other server is listed
    page.get_by_role("searchbox", name="Label").fill("team/web")
    page.get_by_role("button", name="Filter").click()
    expect(mine).to_contain_text(LABEL)
    expect(other).to_have_count(0)
    # The label tree: 'team' holds 'web'; its branch filters the same servers.
    page.get_by_role("link", name="Clear").click()
    expect(other).to_be_visible()
    tree = page.get_by_role("complementary", name="Label tree")
    tree.get_by_role("link", name="team", exact=True).click()
    expect(mine).to_be_visible()
    expect(other).to_have_count(0)
    expect(tree.get_by_role("link", name="web", exact=True)).to_be_visible()
    screenshot(page, "labels-filtered")


def test_launch_a_guest_see_it_active_stop_start_and_delete(
    live_cloud: Cloud, shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud = live_cloud
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
        # Screen 2: the seeded network (other tests may add networks to the project, so
        # it is chosen here) and the default group, which comes chosen.
        private = page.get_by_role("checkbox", name=re.compile("private"))
        private.check()
        expect(private).to_be_checked()
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

        # Label the guest and find it by its label; then back to its page.
        server_id = page.url.rsplit("/", 1)[1]
        _label_and_filter(page, api, server_id)
        assert tab.errors() == []  # the editor's swaps included
        page.get_by_role("link", name="web-guest").click()
        expect(page.get_by_role("heading", name="web-guest", level=1)).to_be_visible()

        # Delete, with its confirmation page.
        actions.get_by_role("link", name="Delete web-guest").click()
        page.get_by_role("button", name="Delete web-guest").click()
        expect(page).to_have_url(re.compile(r"/project/instances$"))
        gone = page.get_by_role("row", name=re.compile("web-guest"))
        expect(gone).to_have_count(0, timeout=BOOT)
        screenshot(page, "servers-deleted")
        assert tab.errors() == []  # nothing refused by the CSP, no script errors
    finally:
        for server in api.servers():
            if server["name"] == "web-guest":
                api.delete_server(server["id"])
        api.close()


def test_a_member_sees_no_admin_actions_and_gets_novas_403(
    shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, server_id = shared_guest.cloud, shared_guest.id
    api = Api(cloud.url, MEMBER_PASSWORD, user=MEMBER, project="demo")
    tab = new_tab(cloud)
    page = tab.page
    try:
        sign_in(page, MEMBER, MEMBER_PASSWORD)
        expect(page.get_by_role("navigation", name="Main")).not_to_contain_text("Hosts")
        page.goto(f"/project/instances/{server_id}")
        panel = page.locator("#server-panel")
        expect(panel).to_contain_text("ACTIVE", timeout=BOOT)
        expect(panel.get_by_role("button", name=f"Stop {GUEST_NAME}")).to_be_visible()
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
        api.close()

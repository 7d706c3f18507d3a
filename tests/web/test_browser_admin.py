"""The admin pages in a real Chromium against the browser tests' shared live `kumo up`
(tests/web/livecloud.py): see the hosts page, create a project and a member user with the
admin pages, and check that the member has no Admin navigation and gets the API's 403
words on an admin URL.

(Labels in the browser are the launch test's: it labels the real guest it launched
through the wizard and filters the list by that label, test_browser_servers.py.)
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from browser import Tab, screenshot, sign_in
from kumoproc import Cloud

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


def test_admin_creates_a_member_who_sees_no_admin_pages(
    live_cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud = live_cloud
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    admin_nav = page.get_by_role("list", name="Admin")
    admin_nav.get_by_role("link", name="Hosts").click()
    host = page.get_by_role("region").filter(has=page.get_by_role("heading", level=2))
    expect(host.first).to_contain_text("up")
    expect(page.get_by_role("meter", name="vCPUs used, percent").first).to_be_visible()
    screenshot(page, "admin-hosts")

    admin_nav.get_by_role("link", name="Projects").click()
    page.get_by_label("Project name").fill("web-team")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("link", name="web-team")).to_be_visible()
    admin_nav.get_by_role("link", name="Users").click()
    page.get_by_label("User name").fill("wendy")
    page.get_by_label("Password").fill("wendy-pw-1")
    page.get_by_label("Default project").select_option(label="web-team")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("cell", name="wendy", exact=True)).to_be_visible()
    admin_nav.get_by_role("link", name="Projects").click()
    page.get_by_role("link", name="web-team").click()
    page.get_by_label("User", exact=True).select_option(label="wendy")
    page.get_by_label("Role", exact=True).select_option(label="member")
    page.get_by_role("button", name="Grant role").click()
    expect(page.get_by_role("button", name="Revoke member from wendy")).to_be_visible()
    screenshot(page, "admin-project")
    assert tab.errors() == []

    member = new_tab(cloud)
    sign_in(member.page, "wendy", "wendy-pw-1")
    expect(member.page.get_by_role("heading", name="Admin")).to_have_count(0)
    member.page.goto("/admin/hosts")
    expect(member.page.get_by_role("alert")).to_contain_text(
        "You are not authorized to perform the requested action: compute:hypervisors:list."
    )
    screenshot(member.page, "admin-member-refused")

"""Labels and admin pages in a real Chromium against a live `kumo up`: label a server on
its page, then filter the instances list by that label (typed, and from the label tree);
see the hosts page, create a project and a member user with the admin pages, and check
that the member has no Admin navigation and gets the API's 403 words on an admin URL.

The guests run on the fake hypervisor: labels are Nova tags, which need a server in a
settled state (ACTIVE), not a booted operating system; the real-QEMU wizard test is the
instances pages' own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import expect

from browser import Tab, screenshot, sign_in
from computeapi import Api
from kumoproc import Cloud, clean_env, start_cloud

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
FAKE = {"KUMO_COMPUTE_HYPERVISOR": "fake"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    running = start_cloud(tmp_path_factory.mktemp("weblabels") / "state", env=clean_env(**FAKE))
    try:
        yield running
    finally:
        running.stop()


def test_label_a_server_and_filter_the_list_by_it(
    cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
    api = Api(cloud.url, cloud.admin_password)
    try:
        ids = []
        for name in ("labelled-vm", "other-vm"):
            created = api.create_server(name, api.image_id())
            assert created.status_code == 202, created.text
            ids.append(created.json()["server"]["id"])
        api.wait_settled(ids, 120, frozenset({"ACTIVE"}))

        tab = new_tab(cloud)
        page = tab.page
        sign_in(page, "admin", cloud.admin_password)
        page.get_by_role("link", name="labelled-vm").click()
        expect(page.get_by_role("heading", name="labelled-vm", level=1)).to_be_visible()
        page.get_by_label("New label").fill("team/web")
        page.get_by_role("button", name="Add label").click()
        labels = page.get_by_role("list", name="Labels")
        expect(labels).to_contain_text("team:web")  # '/' typed is stored as ':'
        expect(page.get_by_role("button", name="Remove label team:web")).to_be_visible()
        screenshot(page, "labels-server")
        # What the openstack CLI shows is what the page shows.
        shown = api.client.get(
            f"/compute/v2.1/servers/{ids[0]}/tags",
            headers={"OpenStack-API-Version": "compute 2.26"},
        )
        assert shown.json()["tags"] == ["team:web"]

        page.get_by_role("link", name="Instances").first.click()
        page.get_by_role("searchbox", name="Label").fill("team/web")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_role("row", name=re.compile("labelled-vm"))).to_be_visible()
        expect(page.get_by_role("row", name=re.compile("other-vm"))).to_have_count(0)
        # The label tree: 'team' holds 'web'; its branch filters the same servers.
        page.get_by_role("link", name="Clear").click()
        expect(page.get_by_role("row", name=re.compile("other-vm"))).to_be_visible()
        tree = page.get_by_role("complementary", name="Label tree")
        tree.get_by_role("link", name="team", exact=True).click()
        expect(page.get_by_role("row", name=re.compile("labelled-vm"))).to_be_visible()
        expect(page.get_by_role("row", name=re.compile("other-vm"))).to_have_count(0)
        expect(tree.get_by_role("link", name="web", exact=True)).to_be_visible()
        screenshot(page, "labels-filtered")
        assert tab.errors() == []
    finally:
        for server in api.servers():
            api.delete_server(server["id"])
        api.close()


def test_admin_creates_a_member_who_sees_no_admin_pages(
    cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
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

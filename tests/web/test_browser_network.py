"""The network pages in a real Chromium against the browser tests' shared live `kumo up`
(tests/web/livecloud.py), with its real QEMU guest on the seeded ``private`` network (demo
project, behind router1 to ``public``): allocate a floating IP from ``public``, associate
it with the guest, watch it turn ACTIVE and show the server's name without a reload,
disassociate and release it (the shared guest gets nothing it keeps); the seeded networks
and router as the pages show them; a network and a security group of the test's own, in
the admin project (the demo project's networks stay as seeded for the launch wizard).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from browser import DESKTOP, PHONE, Tab, screenshot, sign_in, switch_project
from computeapi import Api
from kumoproc import Cloud
from livecloud import GUEST_NAME, SharedGuest

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


def test_floating_ip_allocate_associate_disassociate_release(
    shared_guest: SharedGuest, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud = shared_guest.cloud
    api = Api(cloud.url, cloud.admin_password, project="demo")
    try:
        server = api.server(shared_guest.id)
    finally:
        api.close()
    (fixed,) = [a["addr"] for a in server["addresses"]["private"]]
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    switch_project(page, "demo")

    page.get_by_role("link", name="Floating IPs").click()
    expect(page.get_by_role("heading", name="Floating IPs", level=1)).to_be_visible()
    page.get_by_role("combobox", name=re.compile("^External network")).select_option(label="public")
    page.get_by_role("button", name="Allocate IP").click()
    # The new row is the one floating IP not yet associated (others' may be listed).
    associate = page.get_by_role("link", name=re.compile(r"^Associate "))
    expect(associate).to_have_count(1)
    address = (associate.text_content() or "").removeprefix("Associate ").strip()
    row = page.get_by_role("row", name=re.compile(re.escape(address)))
    expect(row).to_contain_text("DOWN")
    expect(row).to_contain_text("public")
    screenshot(page, "floating-ip-allocated")

    # Associate: the server, then its address on private.
    associate.click()
    expect(page.get_by_role("heading", name=f"Associate {address}")).to_be_visible()
    page.get_by_role("combobox", name=re.compile("^Server")).select_option(label=GUEST_NAME)
    page.get_by_role("button", name="Show its ports").click()
    expect(page.get_by_role("combobox", name=re.compile("^Port"))).to_have_value(
        re.compile(re.escape(fixed) + "$")
    )
    page.get_by_role("button", name="Associate", exact=True).click()
    expect(page.get_by_role("heading", name="Floating IPs", level=1)).to_be_visible()
    expect(row).to_contain_text(GUEST_NAME)
    expect(row).to_contain_text(fixed)
    # The agent applies its NAT; the 2 s poll shows ACTIVE without a reload.
    page.evaluate("window.kumoTestMark = 'not reloaded'")
    expect(row).to_contain_text("ACTIVE", timeout=90_000)
    assert page.evaluate("window.kumoTestMark") == "not reloaded"
    screenshot(page, "floating-ip-associated")

    page.get_by_role("button", name=f"Disassociate {address}").click()
    expect(row).not_to_contain_text(GUEST_NAME)
    expect(row).to_contain_text("DOWN", timeout=30_000)
    # A keyboard user's focus on a row's control survives the polls that replace the rows.
    release = page.get_by_role("button", name=f"Release {address}")
    release.focus()
    for _ in range(2):  # the second poll's answer comes after the first one's swap
        with page.expect_response(lambda r: "/project/floating-ips/rows" in r.url):
            pass
    expect(release).to_be_focused()
    release.click()
    expect(row).to_have_count(0)
    screenshot(page, "floating-ip-released")
    assert tab.errors() == []


def test_seeded_networks_and_router1(live_cloud: Cloud, new_tab: Callable[[Cloud], Tab]) -> None:
    cloud = live_cloud
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    switch_project(page, "demo")
    page.get_by_role("link", name="Networks").click()
    private = page.get_by_role("row", name=re.compile(r"^private"))
    expect(private).to_contain_text("private-subnet")
    expect(page.get_by_role("row", name=re.compile(r"^public"))).to_contain_text("Yes")
    screenshot(page, "networks")
    page.get_by_role("link", name="Routers").click()
    page.get_by_role("link", name="router1").click()
    expect(page.get_by_role("heading", name="router1", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="public")).to_be_visible()
    expect(page.get_by_role("button", name="Remove interface private-subnet")).to_be_visible()
    # Deleting router1 while it has an interface: Neutron's words, in place.
    router_id = page.url.rsplit("/", 1)[1]
    page.get_by_text("Delete", exact=True).click()
    page.get_by_role("button", name="Delete router router1").click()
    expect(page.get_by_role("alert")).to_contain_text(router_id)
    expect(page.get_by_role("heading", name="router1", level=1)).to_be_visible()
    screenshot(page, "router1")
    # The page came with Neutron's 409 (Chromium logs that); nothing else was refused.
    assert [e for e in tab.errors() if "status of 409" not in e] == []


def test_create_network_and_security_group_rule_at_phone_width(
    live_cloud: Cloud, new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud = live_cloud
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)  # the admin project: demo stays as seeded
    page.set_viewport_size(PHONE)
    page.get_by_role("link", name="Networks").click()
    create = page.get_by_role("form", name="Create a network")
    create.get_by_label("Name", exact=True).fill("web-net")
    create.get_by_label("CIDR").fill("10.77.0.0/24")
    create.get_by_role("button", name="Create network").click()
    expect(page.get_by_role("heading", name="web-net", level=1)).to_be_visible()
    expect(page.get_by_role("table", name="Subnets")).to_contain_text("10.77.0.0/24")
    # An overlapping subnet: Neutron's words in place, and what was typed is kept.
    add = page.get_by_role("form", name="Add a subnet")
    add.get_by_label("CIDR").fill("10.77.0.128/25")
    add.get_by_role("button", name="Add subnet").click()
    expect(page.get_by_role("alert")).to_contain_text("10.77.0.128/25")
    expect(page.get_by_role("form", name="Add a subnet").get_by_label("CIDR")).to_have_value(
        "10.77.0.128/25"
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width}px wide at phone width"
    screenshot(page, "network-phone")
    page.set_viewport_size(DESKTOP)

    page.get_by_role("link", name="Security groups").click()
    form = page.get_by_role("form", name="Create a security group")
    form.get_by_label("Name").fill("web")
    form.get_by_role("button", name="Create security group").click()
    expect(page.get_by_role("heading", name="web", level=1)).to_be_visible()
    rule = page.get_by_role("form", name="Add a rule")
    rule.get_by_role("combobox", name=re.compile("^Protocol")).select_option("tcp")
    rule.get_by_label("Port from").fill("22")
    rule.get_by_label("Port to").fill("22")
    rule.get_by_label("Remote CIDR").fill("192.0.2.0/24")
    rule.get_by_role("button", name="Add rule").click()
    rules = page.get_by_role("table", name="Rules")
    ssh = rules.get_by_role("row", name=re.compile(r"ingress IPv4 tcp 22 192\.0\.2\.0"))
    expect(ssh).to_contain_text("192.0.2.0/24")
    screenshot(page, "security-group")
    assert [e for e in tab.errors() if "status of 400" not in e] == []

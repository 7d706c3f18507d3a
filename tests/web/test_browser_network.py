"""The network pages in a real Chromium against a live `kumo up` with a real QEMU guest on
the seeded ``private`` network (demo project, behind router1 to ``public``): allocate a
floating IP from ``public``, associate it with the guest, watch it turn ACTIVE and show the
server's name without a reload, disassociate and release it; and the seeded networks and
router as the pages show them.

The cloud runs on the linux datapath (root: inside namespaces the cloud makes), so a
floating IP's ACTIVE is the agent having applied its NAT, not just the API's answer; the
guest's QEMU is killed by PID and the namespaces are torn down at the end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from browser import DESKTOP, PHONE, Tab, screenshot, sign_in
from computeapi import Api, Guests, require_qemu
from kumoproc import KUMO, Cloud, clean_env, cloud_namespaces, run, start_cloud, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
BOOT = 240.0  # TCG on a busy 2-vCPU machine


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cloud, Guests]]:
    require_qemu()
    state = tmp_path_factory.mktemp("webnet") / "state"
    env = clean_env()
    running = start_cloud(state, env=env)
    guests = Guests()
    try:
        yield running, guests
    finally:
        running.stop()
        guests.cleanup()
        torn = run([KUMO, "--state-dir", str(state), "network", "teardown"], env)
        assert torn.returncode == 0, torn.stderr
        assert cloud_namespaces(state) == set(), "the cloud's namespaces outlived the test"


def _demo(page: Page) -> None:
    """Switch the signed-in admin to the demo project (where ``private`` is)."""
    page.get_by_label("Project").select_option(label="demo")
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_label("Project").locator("option:checked")).to_have_text("demo")


def _active_guest(cloud: Cloud, guests: Guests) -> dict[str, Any]:
    api = Api(cloud.url, cloud.admin_password, project="demo")
    try:
        created = api.create_server("fip-vm", api.image_id())
        assert created.status_code == 202, created.text
        server_id = guests.add(str(created.json()["server"]["id"]))

        def active() -> dict[str, Any] | None:
            server = api.server(server_id)
            assert server["status"] != "ERROR", server
            return server if server["status"] == "ACTIVE" else None

        server: dict[str, Any] = wait_for(active, BOOT, "fip-vm ACTIVE", interval=1.0)
        return server
    finally:
        api.close()


def test_floating_ip_allocate_associate_disassociate_release(
    lab: tuple[Cloud, Guests], new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, guests = lab
    server = _active_guest(cloud, guests)
    (fixed,) = [a["addr"] for a in server["addresses"]["private"]]
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    _demo(page)

    page.get_by_role("link", name="Floating IPs").click()
    expect(page.get_by_role("heading", name="Floating IPs", level=1)).to_be_visible()
    expect(page.get_by_text("No floating IPs in this project yet.")).to_be_visible()
    page.get_by_role("combobox", name=re.compile("^External network")).select_option(label="public")
    page.get_by_role("button", name="Allocate IP").click()
    associate = page.get_by_role("link", name=re.compile(r"^Associate "))
    expect(associate).to_be_visible()
    address = (associate.text_content() or "").removeprefix("Associate ").strip()
    row = page.get_by_role("row", name=re.compile(re.escape(address)))
    expect(row).to_contain_text("DOWN")
    expect(row).to_contain_text("public")
    screenshot(page, "floating-ip-allocated")

    # Associate: the server, then its address on private.
    associate.click()
    expect(page.get_by_role("heading", name=f"Associate {address}")).to_be_visible()
    page.get_by_role("combobox", name=re.compile("^Server")).select_option(label="fip-vm")
    page.get_by_role("button", name="Show its ports").click()
    expect(page.get_by_role("combobox", name=re.compile("^Port"))).to_have_value(
        re.compile(re.escape(fixed) + "$")
    )
    page.get_by_role("button", name="Associate", exact=True).click()
    expect(page.get_by_role("heading", name="Floating IPs", level=1)).to_be_visible()
    expect(row).to_contain_text("fip-vm")
    expect(row).to_contain_text(fixed)
    # The agent applies its NAT; the 2 s poll shows ACTIVE without a reload.
    page.evaluate("window.kumoTestMark = 'not reloaded'")
    expect(row).to_contain_text("ACTIVE", timeout=90_000)
    assert page.evaluate("window.kumoTestMark") == "not reloaded"
    screenshot(page, "floating-ip-associated")

    page.get_by_role("button", name=f"Disassociate {address}").click()
    expect(row).not_to_contain_text("fip-vm")
    expect(row).to_contain_text("DOWN", timeout=30_000)
    # A keyboard user's focus on a row's control survives the polls that replace the rows.
    release = page.get_by_role("button", name=f"Release {address}")
    release.focus()
    for _ in range(2):  # the second poll's answer comes after the first one's swap
        with page.expect_response(lambda r: "/project/floating-ips/rows" in r.url):
            pass
    expect(release).to_be_focused()
    release.click()
    expect(page.get_by_text("No floating IPs in this project yet.")).to_be_visible()
    screenshot(page, "floating-ip-released")
    assert tab.errors() == []


def test_seeded_networks_and_router1(
    lab: tuple[Cloud, Guests], new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, _ = lab
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    _demo(page)
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
    lab: tuple[Cloud, Guests], new_tab: Callable[[Cloud], Tab]
) -> None:
    cloud, _ = lab
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    _demo(page)
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

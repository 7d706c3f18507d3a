"""The dashboard in a real Chromium against a live `kumo up`: sign in, watch a server go
from BUILD to ACTIVE without reloading, at desktop and phone widths, and sign out.

The cloud starts without its agent, so a new server waits in BUILD (no host yet) for as
long as the test needs to see it; then an agent (fake hypervisor) registers and the
scheduler places it. That makes BUILD -> ACTIVE a sequence the page must show, not a race.
So this module has a cloud of its own (no guest, no QEMU: it starts in seconds) rather
than the browser tests' shared one (tests/web/livecloud.py), where a host is already up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from browser import PHONE, Tab, screenshot, sign_in
from computeapi import Api, kill_leftovers, start_agent
from kumoproc import Cloud, clean_env, start_cloud

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]
FAKE = {"KUMO_COMPUTE_HYPERVISOR": "fake"}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    running = start_cloud(
        tmp_path_factory.mktemp("web") / "state", "--no-agent", env=clean_env(**FAKE)
    )
    try:
        yield running
    finally:
        running.stop()


# Opens a websocket to this origin (no such endpoint: the handshake fails) and waits for
# it to close, then one to another origin and waits for the CSP's refusal of it; returns
# the URLs the page's CSP refused.
_CSP_PROBE = """async () => {
  const refused = [];
  document.addEventListener("securitypolicyviolation", (e) => refused.push(e.blockedURI));
  const same = new WebSocket(location.origin.replace(/^http/, "ws") + "/no-such-socket");
  await new Promise((done) => { same.onclose = done; });
  const violation = new Promise((done) =>
    document.addEventListener("securitypolicyviolation", done, { once: true }));
  try { new WebSocket("ws://127.0.0.2:9/"); } catch (e) { refused.push("ws://127.0.0.2:9/"); }
  await violation;
  return refused;
}"""


# Waits for the next poll's swap of the rows to settle; the focused element's text then.
_FOCUS_AFTER_NEXT_POLL = """() => new Promise((done) => {
  const rows = document.getElementById("instance-rows");
  rows.addEventListener("htmx:afterSettle", () => done(document.activeElement.textContent),
                        { once: true });
})"""


def csp_refused_websockets(page: Page) -> list[str]:
    refused: list[str] = page.evaluate(_CSP_PROBE)
    return sorted(set(refused))


def test_sign_in_watch_a_server_become_active_and_sign_out(
    cloud: Cloud, new_tab: Callable[[Cloud], Tab], tmp_path: Path
) -> None:
    assert f"dashboard        {cloud.url}/" in cloud.output()  # kumo up says where it is
    tab = new_tab(cloud)
    page = tab.page
    sign_in(page, "admin", cloud.admin_password)
    expect(page).to_have_url(re.compile(r"/project/instances$"))
    expect(page.get_by_text("No instances in this project yet.")).to_be_visible()
    screenshot(page, "instances-empty")
    # connect-src 'self' lets the consoles' websockets to this origin through, and no other.
    assert csp_refused_websockets(page) == ["ws://127.0.0.2:9/"]
    tab.console.clear()  # that refusal was expected
    # Anything the page keeps in its window survives only if it is never reloaded.
    page.evaluate("window.kumoTestMark = 'not reloaded'")

    api = Api(cloud.url, cloud.admin_password)
    created = api.create_server("web-vm", api.image_id())
    assert created.status_code == 202, created.text
    row = page.get_by_role("row", name=re.compile(r"web-vm"))
    expect(row).to_contain_text("BUILD", timeout=10_000)  # the 1 s poll brought it
    screenshot(page, "instances-build")

    agent = start_agent(
        tmp_path / "agent-state",
        cloud.url,
        cloud.state_dir / "host-credential",
        "web-host",
        tmp_path / "agent.log",
        **FAKE,
    )
    try:
        expect(row).to_contain_text("ACTIVE", timeout=90_000)
        expect(row).to_contain_text("web-host")  # admins see the host column
        screenshot(page, "instances-active")
        assert page.evaluate("window.kumoTestMark") == "not reloaded"
        # A keyboard user on a row's link keeps the focus when the next poll replaces it.
        page.get_by_role("link", name="web-vm").focus()
        assert page.evaluate(_FOCUS_AFTER_NEXT_POLL) == "web-vm"

        # The overview page, then back.
        page.get_by_role("link", name="web-vm").click()
        expect(page.get_by_role("heading", name="web-vm", level=1)).to_be_visible()
        page.get_by_role("link", name="Instances").first.click()
        expect(row).to_contain_text("ACTIVE")

        # At phone width the table scrolls inside its box: the page itself does not.
        page.set_viewport_size(PHONE)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide at phone width"
        screenshot(page, "instances-phone")
        page.set_viewport_size({"width": 1280, "height": 800})

        # Nothing the page does was refused by the Content-Security-Policy.
        assert tab.errors() == []

        page.get_by_label("User menu: admin").click()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("You have signed out.")).to_be_visible()
        page.goto("/project/instances")
        expect(page.get_by_role("heading", name="Sign in to kumo")).to_be_visible()
        api.delete_server(api.servers()[0]["id"])
    finally:
        kill_leftovers(agent)
        api.close()

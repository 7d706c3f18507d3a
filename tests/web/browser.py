"""Shared pieces of the dashboard's browser tests: Debian's Chromium driven by Playwright
against a live `kumo up` (tests/kumoproc.py), a signed-in page, and screenshots kept as CI
artifacts.

Playwright cannot download its own browser here, so it launches /usr/bin/chromium
(`make system-deps` installs it); a machine without it skips, CI fails. Tests find
controls by role and accessible name, as a screen reader would, never by CSS path.
The fixtures are re-exported by tests/web/conftest.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from kumoproc import ROOT, Cloud, in_ci

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts" / "web"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One headless Chromium for the test session (pages are cheap, browsers are not)."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


class Tab:
    """A page of its own browser context (its own cookies), with what the page reported
    on its console: a CSP violation or a script error fails the test that checks it."""

    def __init__(self, browser: Browser, base_url: str) -> None:
        self.context = browser.new_context(base_url=base_url, viewport=DESKTOP)  # type: ignore[arg-type]
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.console: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.console.append(f"pageerror: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            where = message.location.get("url", "")
            self.console.append(f"{message.type}: {message.text} ({where} on {self.page.url})")

    def errors(self) -> list[str]:
        """Console errors and warnings so far (CSP refusals are reported there)."""
        return list(self.console)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def new_tab(chromium: Browser) -> Iterator[Callable[[Cloud], Tab]]:
    """``new_tab(cloud)``: a fresh browser context on a live cloud, closed after the test."""
    tabs: list[Tab] = []

    def factory(cloud: Cloud) -> Tab:
        tab = Tab(chromium, cloud.url)
        tabs.append(tab)
        return tab

    yield factory
    for tab in tabs:
        tab.close()


def sign_in(page: Page, user: str, password: str, domain: str = "Default") -> None:
    """Sign in through the form, as a user would, and wait for the instances page."""
    page.goto("/")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Domain").fill(domain)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Instances", level=1)).to_be_visible()


def switch_project(page: Page, name: str) -> None:
    """Switch the signed-in user to project ``name`` with the header's project switch."""
    page.get_by_label("Project").select_option(label=name)
    page.get_by_role("button", name="Switch").click()
    expect(page.get_by_label("Project").locator("option:checked")).to_have_text(name)


def screenshot(page: Page, name: str) -> Path:
    """Save the page as <repo>/artifacts/web/<name>.png (CI keeps artifacts/) and print
    the path, so the log says where to look."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path

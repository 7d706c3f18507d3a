"""The dashboard as a browser sees it, in process: a TestClient with its own cookie jar that
shows each redirect instead of following it, and readers of the pages it gets."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi.testclient import TestClient

_T = TypeVar("_T")
SERVERS = "/compute/v2.1/servers"
_FORM_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_ROW_NAME = re.compile(r'<tr id="server-([0-9a-f-]+)">.*?<td><a [^>]*>([^<]*)</a>', re.S)


def form_csrf(html: str) -> str:
    """The CSRF token of the page's first form."""
    found = _FORM_CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def run_async(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coroutine`` to its end on a thread of its own: the browser tests' Playwright
    keeps an event loop running on the test thread, where ``asyncio.run`` refuses to start."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def row_names(html: str) -> list[str]:
    """The server names of an instances table, in order."""
    return [name for _, name in _ROW_NAME.findall(html)]


class Visitor:
    """A TestClient that keeps cookies as a browser would and shows each redirect."""

    def __init__(self, client: TestClient, base_url: str = "http://testserver") -> None:
        self.http = TestClient(
            client.app, base_url=base_url, raise_server_exceptions=False, follow_redirects=False
        )

    def sign_in(self, user: str, password: str, domain: str = "Default") -> Any:
        form = self.http.get("/auth/login")
        assert form.status_code == 200, form.text
        body = {
            "username": user,
            "password": password,
            "domain": domain,
            "csrf_token": form_csrf(form.text),
        }
        return self.http.post("/auth/login", data=body)

    @property
    def session_token(self) -> str:
        return str(self.http.cookies.get("kumo_session"))

    def page_csrf(self) -> str:
        """The session's CSRF token, as the instances page renders it."""
        page = self.http.get("/project/instances")
        assert page.status_code == 200, page.text
        return form_csrf(page.text)


def create_server(cloud: Any, headers: dict[str, str], image: str, name: str, **extra: Any) -> str:
    """A server through Nova's API (in BUILD until a host takes it); its id."""
    body = {"server": {"name": name, "imageRef": image, "flavorRef": "1", **extra}}
    resp = cloud.client.post(SERVERS, json=body, headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["server"]["id"])

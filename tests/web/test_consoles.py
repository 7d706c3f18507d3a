"""The console pages and the server page's console buttons, in process: the pages carry
the token to their script (no session needed), their CSP, and Nova's refusals in Nova's
words (409 for a server not running, 404 for another project's server)."""

from __future__ import annotations

import re
from typing import Any

from kumo.api.console_proxy import SESSION_COOKIE
from kumo.web.pages.consoles import TERMINAL_CSP
from kumo.web.routing import CONTENT_SECURITY_POLICY
from kumo.web.session import COOKIE

from visitor import Visitor, create_server, form_csrf

TOKEN = "Abc-123_xyz"


def test_console_pages_need_no_session_only_a_token(visitor: Visitor) -> None:
    vnc = visitor.http.get(f"/console/vnc?token={TOKEN}")
    assert vnc.status_code == 200, vnc.text
    assert f'data-socket="/console/websocket/vnc?token={TOKEN}"' in vnc.text
    assert vnc.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert '<script type="module" src="/static/consoles/vnc.js">' in vnc.text
    serial = visitor.http.get(f"/console/serial?token={TOKEN}")
    assert serial.status_code == 200, serial.text
    assert f'data-socket="/console/websocket/serial?token={TOKEN}"' in serial.text
    # xterm.js's own <style> elements need inline styles; scripts stay 'self' only.
    csp = serial.headers["Content-Security-Policy"]
    assert csp == TERMINAL_CSP and "script-src 'self';" in csp
    assert "style-src 'self' 'unsafe-inline';" in csp
    for page in (vnc, serial):
        assert "<script>" not in page.text and " style=" not in page.text


def test_a_missing_or_malformed_token_is_a_400_page(visitor: Visitor) -> None:
    for query in ("", "?token=", "?token=a%22b", "?token=" + "a" * 200):
        for page in ("/console/vnc", "/console/serial"):
            resp = visitor.http.get(page + query)
            assert resp.status_code == 400, (page, query, resp.text)
            assert "Bad request" in resp.text


def _open(visitor: Visitor, server_id: str, protocol: str, csrf: str) -> Any:
    return visitor.http.post(
        f"/project/instances/{server_id}/console",
        data={"protocol": protocol, "csrf_token": csrf},
    )


def test_a_server_not_running_has_no_console_in_novas_words(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    server_id = create_server(cloud, cloud.admin, image_id, "building-vm")
    page = admin_visitor.http.get(f"/project/instances/{server_id}")
    assert page.status_code == 200
    assert '<button type="submit">Graphical console</button>' in page.text
    assert '<button type="submit">Serial console</button>' in page.text
    csrf = form_csrf(page.text)
    for protocol in ("vnc", "serial"):
        resp = _open(admin_visitor, server_id, protocol, csrf)
        assert resp.status_code == 409, resp.text
        assert f"Instance {server_id} is not ready" in resp.text
    assert _open(admin_visitor, server_id, "spice", csrf).status_code == 400
    # From the server page's htmx form: the words in place, under the buttons.
    assert 'hx-target="#console-error"' in page.text
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/console",
        data={"protocol": "serial"},
        headers={"HX-Request": "true", "X-CSRF-Token": csrf},
    )
    assert resp.status_code == 200, resp.text
    assert resp.text.strip() == (
        f'<p class="alert" role="alert">Instance {server_id} is not ready</p>'
    )
    # Without the CSRF token nothing is asked of Nova.
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/console", data={"protocol": "vnc"}
    )
    assert resp.status_code == 403


def test_another_projects_server_console_is_novas_404(
    visitor: Visitor, cloud: Any, image_id: str
) -> None:
    server_id = create_server(cloud, cloud.admin, image_id, "admins-vm")
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    resp = _open(visitor, server_id, "vnc", visitor.page_csrf())
    assert resp.status_code == 404, resp.text
    assert re.search(f"Instance {server_id} could not be found", resp.text)


def test_the_console_proxy_knows_the_dashboards_session_cookie() -> None:
    """The proxy refuses a signed-in user of another project by this cookie (the API does
    not import the dashboard, so the name is written twice)."""
    assert SESSION_COOKIE == COOKIE

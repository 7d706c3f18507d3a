"""Sign-in, sign-out, project switch, CSRF and security headers of the dashboard."""

from __future__ import annotations

from typing import Any

from kumo.web.routing import CONTENT_SECURITY_POLICY

from apihelpers import ADMIN_PASSWORD
from visitor import Visitor, form_csrf

EXPIRED = "Your session expired or was revoked; sign in again."


def _cookie_header(resp: Any, name: str) -> str:
    headers = [h for h in resp.headers.get_list("set-cookie") if h.startswith(name + "=")]
    assert len(headers) == 1, resp.headers.get_list("set-cookie")
    return str(headers[0])


def test_sign_in_keeps_the_token_in_an_httponly_strict_cookie(admin_visitor: Visitor) -> None:
    resp = admin_visitor.sign_in("admin", ADMIN_PASSWORD)
    assert (resp.status_code, resp.headers["location"]) == (303, "/")
    cookie = _cookie_header(resp, "kumo_session").lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # the test cloud's public URL is http
    token = admin_visitor.session_token
    page = admin_visitor.http.get("/project/instances")
    assert page.status_code == 200
    assert token not in page.text  # the token never reaches the page (only its HMAC)
    assert "admin" in page.text and "Sign out" in page.text


def test_root_goes_to_sign_in_then_to_instances(visitor: Visitor) -> None:
    resp = visitor.http.get("/")
    assert (resp.status_code, resp.headers["location"]) == (303, "/auth/login")
    visitor.sign_in("admin", ADMIN_PASSWORD)
    resp = visitor.http.get("/")
    assert (resp.status_code, resp.headers["location"]) == (303, "/project/instances")


def test_wrong_password_shows_keystones_words(visitor: Visitor) -> None:
    resp = visitor.sign_in("admin", "not-the-password")
    assert resp.status_code == 401
    assert "The request you have made requires authentication." in resp.text
    assert "kumo_session" not in visitor.http.cookies


def test_sign_in_without_or_with_a_wrong_csrf_value_is_refused(visitor: Visitor) -> None:
    visitor.http.get("/auth/login")  # sets the double-submit cookie
    body = {"username": "admin", "password": ADMIN_PASSWORD, "domain": "Default"}
    resp = visitor.http.post("/auth/login", data=body)
    assert resp.status_code == 403 and "carries no CSRF token" in resp.text
    resp = visitor.http.post("/auth/login", data={**body, "csrf_token": "x" * 43})
    assert resp.status_code == 403 and "CSRF token is wrong" in resp.text
    assert "kumo_session" not in visitor.http.cookies


def test_state_changing_requests_need_the_sessions_csrf_token(
    admin_visitor: Visitor, cloud: Any
) -> None:
    token = admin_visitor.session_token
    resp = admin_visitor.http.post("/auth/logout")
    assert resp.status_code == 403 and "carries no CSRF token" in resp.text
    resp = admin_visitor.http.post("/auth/logout", headers={"X-CSRF-Token": "0" * 64})
    assert resp.status_code == 403 and "CSRF token is wrong" in resp.text
    # Another session's token does not do either.
    other = Visitor(cloud.client)
    other.sign_in("admin", ADMIN_PASSWORD)
    resp = admin_visitor.http.post("/auth/logout", data={"csrf_token": other.page_csrf()})
    assert resp.status_code == 403
    # Nothing happened: the session still works.
    assert admin_visitor.http.get("/project/instances").status_code == 200
    # The right one, as htmx sends it (a header), signs out and revokes the token.
    resp = admin_visitor.http.post(
        "/auth/logout", headers={"X-CSRF-Token": admin_visitor.page_csrf()}
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/auth/login?reason=signed-out")
    check = cloud.client.get("/compute/v2.1/servers", headers={"X-Auth-Token": token})
    assert check.status_code == 401
    assert "You have signed out." in admin_visitor.http.get(resp.headers["location"]).text


def test_every_dashboard_response_has_the_security_headers(admin_visitor: Visitor) -> None:
    responses = [
        admin_visitor.http.get("/"),
        admin_visitor.http.get("/auth/login"),
        admin_visitor.http.get("/project/instances"),
        admin_visitor.http.get("/project/instances/rows"),
        admin_visitor.http.get("/project/instances?limit=abc"),
        admin_visitor.http.post("/auth/logout"),
        admin_visitor.http.get("/static/kumo.css"),
        admin_visitor.http.get("/static/vendor/htmx/htmx.min.js"),
    ]
    for resp in responses:
        assert resp.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, resp.url
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert resp.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_pages_have_no_inline_script_or_style(admin_visitor: Visitor) -> None:
    for path in ("/auth/login", "/project/instances"):
        html = admin_visitor.http.get(path).text
        assert "<script>" not in html and "<script " not in html.replace(
            '<script src="/static/vendor/htmx/htmx.min.js" defer></script>', ""
        )
        assert " style=" not in html and "<style" not in html
        assert '"includeIndicatorStyles": false' in html


def _revoke(cloud: Any, token: str) -> None:
    resp = cloud.client.delete(
        "/identity/v3/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token}
    )
    assert resp.status_code == 204


def test_a_revoked_token_sends_the_user_to_sign_in_with_the_message(
    admin_visitor: Visitor, cloud: Any
) -> None:
    _revoke(cloud, admin_visitor.session_token)
    resp = admin_visitor.http.get("/project/instances")
    assert (resp.status_code, resp.headers["location"]) == (303, "/auth/login?reason=expired")
    assert "kumo_session" not in admin_visitor.http.cookies  # cleared
    assert EXPIRED in admin_visitor.http.get(resp.headers["location"]).text
    # The live table's poll (htmx) is told where to go instead (a redirect would swap the
    # sign-in page into the table).
    admin_visitor.sign_in("admin", ADMIN_PASSWORD)
    _revoke(cloud, admin_visitor.session_token)
    resp = admin_visitor.http.get("/project/instances/rows", headers={"HX-Request": "true"})
    assert (resp.status_code, resp.headers["hx-redirect"]) == (200, "/auth/login?reason=expired")
    assert "kumo_session" not in admin_visitor.http.cookies


def test_project_switch_rescopes_the_session(visitor: Visitor, cloud: Any) -> None:
    other = cloud.project("other")
    user = cloud.user("alice", "alice-pw", project_id=cloud.boot.demo_project_id)
    cloud.grant(user["id"], "member", project_id=other["id"])
    assert visitor.sign_in("alice", "alice-pw").status_code == 303
    first = visitor.session_token
    page = visitor.http.get("/project/instances").text
    assert f'<option value="{cloud.boot.demo_project_id}" selected>' in page
    resp = visitor.http.post(
        "/auth/project", data={"project_id": other["id"], "csrf_token": form_csrf(page)}
    )
    assert (resp.status_code, resp.headers["location"]) == (303, "/")
    assert visitor.session_token != first
    page = visitor.http.get("/project/instances").text
    assert f'<option value="{other["id"]}" selected>' in page
    # A project the user has no role on: Keystone's refusal, in its words, in place.
    stranger = cloud.project("stranger")
    resp = visitor.http.post(
        "/auth/project", data={"project_id": stranger["id"], "csrf_token": form_csrf(page)}
    )
    assert resp.status_code == 401
    assert f"has no access to project {stranger['id']}." in resp.text
    assert visitor.http.get("/project/instances").status_code == 200  # still signed in


def test_switching_to_no_project_is_keystones_refusal(admin_visitor: Visitor) -> None:
    csrf = admin_visitor.page_csrf()
    resp = admin_visitor.http.post("/auth/project", data={"project_id": "", "csrf_token": csrf})
    assert 400 <= resp.status_code < 500, resp.text
    assert admin_visitor.http.get("/project/instances").status_code == 200

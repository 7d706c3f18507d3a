"""Admin projects, users and role assignments: Keystone's calls from the dashboard,
Keystone's refusals in its words, a member refused with Keystone's 403, in process."""

from __future__ import annotations

import re
from typing import Any

from apihelpers import ADMIN_PASSWORD
from visitor import Visitor, form_csrf

V3 = "/identity/v3"


def _find(cloud: Any, collection: str, name: str) -> dict[str, Any] | None:
    listed = cloud.client.get(f"{V3}/{collection}", headers=cloud.admin).json()[collection]
    return next((i for i in listed if i["name"] == name), None)


def test_projects_users_and_role_grants(admin_visitor: Visitor, cloud: Any) -> None:
    page = admin_visitor.http.get("/admin/projects")
    assert page.status_code == 200, page.text
    csrf = form_csrf(page.text)
    resp = admin_visitor.http.post(
        "/admin/projects", data={"name": "web-team", "description": "d", "csrf_token": csrf}
    )
    assert resp.status_code == 303, resp.text
    project = _find(cloud, "projects", "web-team")
    assert project is not None and project["description"] == "d"
    # The same name again: Keystone's 409, in its words, on the page.
    resp = admin_visitor.http.post("/admin/projects", data={"name": "web-team", "csrf_token": csrf})
    assert resp.status_code == 409 and '<p class="alert" role="alert">' in resp.text

    resp = admin_visitor.http.post(
        "/admin/users",
        data={
            "name": "wendy",
            "password": "wendy-pw",
            "default_project_id": project["id"],
            "csrf_token": csrf,
        },
    )
    assert resp.status_code == 303, resp.text
    user = _find(cloud, "users", "wendy")
    assert user is not None and user["default_project_id"] == project["id"]
    role = _find(cloud, "roles", "member")
    assert role is not None
    grant = {"user_id": user["id"], "role_id": role["id"], "csrf_token": csrf}
    resp = admin_visitor.http.post(f"/admin/projects/{project['id']}/grant", data=grant)
    assert resp.status_code == 303, resp.text
    page = admin_visitor.http.get(f"/admin/projects/{project['id']}").text
    assert re.search(r"<td>wendy</td><td>member</td>", page)
    # The new user signs in to the project the grant gave.
    wendy = Visitor(cloud.client)
    with wendy.http:
        assert wendy.sign_in("wendy", "wendy-pw").status_code == 303
    resp = admin_visitor.http.post(f"/admin/projects/{project['id']}/revoke", data=grant)
    assert resp.status_code == 303
    page = admin_visitor.http.get(f"/admin/projects/{project['id']}").text
    assert "No one has a role on this project." in page

    resp = admin_visitor.http.post(f"/admin/users/{user['id']}/delete", data={"csrf_token": csrf})
    assert resp.status_code == 303 and _find(cloud, "users", "wendy") is None
    resp = admin_visitor.http.post(
        f"/admin/projects/{project['id']}/delete", data={"csrf_token": csrf}
    )
    assert resp.status_code == 303 and _find(cloud, "projects", "web-team") is None


def test_a_member_gets_keystones_403_words(visitor: Visitor, cloud: Any) -> None:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    token = visitor.session_token
    for page_url, api_url in (("/admin/projects", "projects"), ("/admin/users", "users")):
        keystone = cloud.client.get(f"{V3}/{api_url}", headers=cloud.h(token))
        assert keystone.status_code == 403
        words = keystone.json()["error"]["message"]
        page = visitor.http.get(page_url)
        assert page.status_code == 403 and words in page.text, page.text
        assert "Admin</h2>" not in page.text
    csrf = visitor.page_csrf()
    resp = visitor.http.post("/admin/projects", data={"name": "mine", "csrf_token": csrf})
    assert resp.status_code == 403
    admin = Visitor(cloud.client)
    admin.sign_in("admin", ADMIN_PASSWORD)
    assert _find(cloud, "projects", "mine") is None

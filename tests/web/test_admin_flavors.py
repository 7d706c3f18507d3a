"""Admin flavors page: Nova's list, create and delete, Nova's refusals in its words, and a
member's create refused with Nova's 403 words, in process."""

from __future__ import annotations

from typing import Any

from visitor import Visitor, form_csrf

FLAVORS = "/compute/v2.1/flavors"


def _nova_flavor(cloud: Any, name: str) -> dict[str, Any] | None:
    listed = cloud.client.get(FLAVORS + "/detail?is_public=None", headers=cloud.admin).json()
    return next((f for f in listed["flavors"] if f["name"] == name), None)


def test_create_and_delete_a_flavor(admin_visitor: Visitor, cloud: Any) -> None:
    page = admin_visitor.http.get("/admin/flavors")
    assert page.status_code == 200, page.text
    assert "<td>m1.tiny</td>" in page.text
    csrf = form_csrf(page.text)
    form = {"name": "web.small", "vcpus": "2", "ram": "1024", "disk": "5", "csrf_token": csrf}
    resp = admin_visitor.http.post("/admin/flavors", data=form)  # not public: no "public"
    assert resp.status_code == 303, resp.text
    created = _nova_flavor(cloud, "web.small")
    assert created is not None
    assert (created["vcpus"], created["ram"], created["disk"]) == (2, 1024, 5)
    assert created["os-flavor-access:is_public"] is False
    page = admin_visitor.http.get("/admin/flavors").text
    assert f"<td>web.small</td><td>{created['id']}</td>" in page
    resp = admin_visitor.http.post(
        f"/admin/flavors/{created['id']}/delete", data={"csrf_token": csrf}
    )
    assert resp.status_code == 303
    assert _nova_flavor(cloud, "web.small") is None


def test_novas_refusal_is_shown_in_place(admin_visitor: Visitor, cloud: Any) -> None:
    csrf = admin_visitor.page_csrf()
    form = {"name": "m1.tiny", "vcpus": "1", "ram": "64", "disk": "1", "csrf_token": csrf}
    nova = cloud.client.post(
        FLAVORS,
        json={"flavor": {"name": "m1.tiny", "vcpus": 1, "ram": 64, "disk": 1}},
        headers=cloud.admin,
    )
    assert nova.status_code == 409
    words = nova.json()["conflictingRequest"]["message"]
    resp = admin_visitor.http.post("/admin/flavors", data={**form, "public": "on"})
    assert resp.status_code == 409
    assert f'<p class="alert" role="alert">{words}</p>' in resp.text
    assert 'value="64"' in resp.text  # the form keeps what was typed
    resp = admin_visitor.http.post("/admin/flavors", data={**form, "name": "x", "ram": "lots"})
    assert resp.status_code == 400 and "<h1>Flavors</h1>" in resp.text


def test_a_member_cannot_create_flavors(visitor: Visitor, cloud: Any) -> None:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    body = {"flavor": {"name": "mine", "vcpus": 1, "ram": 64, "disk": 1}}
    nova = cloud.client.post(FLAVORS, json=body, headers=cloud.h(visitor.session_token))
    assert nova.status_code == 403
    words = nova.json()["forbidden"]["message"]
    page = visitor.http.get("/admin/flavors")
    assert "Admin</h2>" not in page.text  # no admin navigation
    form = {"name": "mine", "vcpus": "1", "ram": "64", "disk": "1"}
    resp = visitor.http.post("/admin/flavors", data={**form, "csrf_token": form_csrf(page.text)})
    assert resp.status_code == 403 and words in resp.text
    assert _nova_flavor(cloud, "mine") is None

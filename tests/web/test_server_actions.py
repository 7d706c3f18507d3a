"""Server actions from the dashboard, in process, with a fake-hypervisor host so servers
really reach ACTIVE: CSRF refused, the state table, Nova's refusals in place in Nova's
words, admin-only actions hidden from members and refused by Nova when posted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from kumo.web.server_states import ALLOWED, offered

from fakehost import Compute, active_server
from visitor import SERVERS, Visitor

pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")
HTMX = {"HX-Request": "true"}


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _member(visitor: Visitor, cloud: Any) -> dict[str, str]:
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    assert visitor.sign_in("mia", "mia-pw").status_code == 303
    return cloud.h(visitor.session_token)


def _buttons(html: str) -> list[str]:
    """The slugs of the actions a fragment or page offers, in order."""
    return list(dict.fromkeys(re.findall(r"/action/([a-z-]+)\"", html)))


def test_the_table_offers_by_status_task_and_role() -> None:
    assert [a.slug for a in offered("SHUTOFF", None, False)][:1] == ["start"]
    assert "migrate" in [a.slug for a in offered("ACTIVE", None, True)]
    member = [a.slug for a in offered("ACTIVE", None, False)]
    assert "migrate" not in member and "live-migrate" not in member and "stop" in member
    assert [a.slug for a in offered("ACTIVE", "rebooting", False)] == ["reboot-hard", "delete"]
    assert [a.slug for a in offered("BUILD", None, True)] == ["delete"]
    assert [a.slug for a in offered("ACTIVE", "image_uploading", True)] == ["delete"]
    assert set(ALLOWED["VERIFY_RESIZE"]) == {"confirm-resize", "revert-resize", "delete"}


def test_stop_and_start_follow_the_state(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
    assert "stop" in _buttons(panel) and "start" not in _buttons(panel)
    assert "migrate" in _buttons(panel)  # an admin
    csrf = admin_visitor.page_csrf()
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/stop",
        data={"csrf_token": csrf, "next": f"/project/instances/{server_id}"},
    )
    assert resp.status_code == 303 and resp.headers["location"].endswith(server_id)
    shown = compute.show(server_id, cloud.admin)
    assert shown["OS-EXT-STS:task_state"] == "powering-off"
    panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
    assert "(powering-off)" in panel and _buttons(panel) == ["delete"]
    compute.converge()
    panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
    assert "SHUTOFF" in panel and _buttons(panel)[0] == "start"
    # htmx: a fragment for the result region, and the event that reloads the panel.
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/start", headers={**HTMX, "X-CSRF-Token": csrf}
    )
    assert resp.status_code == 200 and resp.headers["HX-Trigger"] == "kumo-server-changed"
    assert "Start requested" in resp.text
    compute.converge()
    assert compute.show(server_id, cloud.admin)["status"] == "ACTIVE"


def test_an_action_without_the_csrf_token_is_refused(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    for data in ({}, {"csrf_token": "0" * 64}):
        resp = admin_visitor.http.post(f"/project/instances/{server_id}/action/stop", data=data)
        assert resp.status_code == 403, resp.text
        assert "CSRF" in resp.text
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/delete", headers=HTMX, data={}
    )
    assert resp.status_code == 403
    assert compute.show(server_id, cloud.admin)["status"] == "ACTIVE"  # nothing ran


def test_novas_conflict_is_shown_in_place_in_its_words(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    csrf = admin_visitor.page_csrf()
    url = f"/project/instances/{server_id}/action/start"  # not offered: the server runs
    nova = compute.action(server_id, cloud.admin, {"os-start": None})
    assert nova.status_code == 409
    words = str(escape(nova.json()["conflictingRequest"]["message"]))
    resp = admin_visitor.http.post(url, headers={**HTMX, "X-CSRF-Token": csrf})
    assert resp.status_code == 200  # htmx swaps 2xx only; the status is in the fragment
    assert words in resp.text and 'role="alert"' in resp.text and "HTTP 409" in resp.text
    resp = admin_visitor.http.post(url, data={"csrf_token": csrf})  # no JavaScript
    assert resp.status_code == 409 and words in resp.text


def test_resize_asks_for_a_flavor_and_is_confirmed(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    form = admin_visitor.http.get(f"/project/instances/{server_id}/action/resize")
    assert form.status_code == 200 and '<label for="resize-flavor">New flavor</label>' in form.text
    csrf = admin_visitor.page_csrf()
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/resize", data={"csrf_token": csrf, "flavor": "2"}
    )
    assert resp.status_code == 303, resp.text
    compute.converge()
    compute.converge()
    assert compute.show(server_id, cloud.admin)["status"] == "VERIFY_RESIZE"
    panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
    assert _buttons(panel) == ["confirm-resize", "revert-resize", "delete"]
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/confirm-resize", data={"csrf_token": csrf}
    )
    assert resp.status_code == 303
    compute.converge()
    shown = compute.show(server_id, cloud.admin)
    assert shown["status"] == "ACTIVE" and shown["flavor"]["id"] == "2"


def test_a_bad_resize_is_novas_400_on_the_form(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    csrf = admin_visitor.page_csrf()
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/resize",
        data={"csrf_token": csrf, "flavor": "no-such-flavor"},
    )
    assert resp.status_code in (400, 404), resp.text
    assert '<label for="resize-flavor">' in resp.text  # the form again, with the error
    assert re.search(r'<p class="alert" role="alert">[^<]*no-such-flavor', resp.text), resp.text


def test_snapshot_and_delete_with_confirmation(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin, name="snapme")
    csrf = admin_visitor.page_csrf()
    form = admin_visitor.http.get(f"/project/instances/{server_id}/action/snapshot").text
    assert 'value="snapme-snapshot"' in form
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/snapshot",
        data={"csrf_token": csrf, "name": "snap-1"},
    )
    assert resp.status_code == 303, resp.text
    images = cloud.client.get("/image/v2/images?name=snap-1", headers=cloud.admin).json()
    assert len(images["images"]) == 1
    compute.converge()
    confirm = admin_visitor.http.get(f"/project/instances/{server_id}/action/delete")
    assert confirm.status_code == 200 and "Delete snapme" in confirm.text
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/delete",
        data={"csrf_token": csrf, "next": "/project/instances"},
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/project/instances"
    compute.converge()
    gone = cloud.client.get(f"{SERVERS}/{server_id}", headers=cloud.admin)
    assert gone.status_code == 404


def test_next_never_leaves_the_instances_pages(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    server_id = active_server(compute, cloud.admin)
    csrf = admin_visitor.page_csrf()
    resp = admin_visitor.http.post(
        f"/project/instances/{server_id}/action/pause",
        data={"csrf_token": csrf, "next": "//evil.example/project/instances"},
    )
    assert resp.status_code == 303
    assert resp.headers["location"] == f"/project/instances/{server_id}"


def test_list_rows_carry_the_menu(admin_visitor: Visitor, compute: Compute, cloud: Any) -> None:
    server_id = active_server(compute, cloud.admin, name="menu-vm")
    page = admin_visitor.http.get("/project/instances").text
    assert 'aria-label="Actions for menu-vm"' in page
    (row,) = re.findall(r'<tr id="server-.*?</tr>', page, re.S)
    assert f"/project/instances/{server_id}/action/stop" in row
    assert "/action/live-migrate" in row
    assert '<script src="/static/instances.js" defer></script>' in page


def test_members_see_no_admin_actions_and_get_novas_403(
    visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    headers = _member(visitor, cloud)
    server_id = active_server(compute, headers)
    panel = visitor.http.get(f"/project/instances/{server_id}/panel").text
    assert "stop" in _buttons(panel)
    assert "migrate" not in _buttons(panel) and "live-migrate" not in _buttons(panel)
    rows = visitor.http.get("/project/instances").text
    assert "/action/migrate" not in rows and "/action/live-migrate" not in rows
    csrf = visitor.page_csrf()
    for slug, body in (
        ("migrate", {"migrate": None}),
        ("live-migrate", {"os-migrateLive": {"host": None, "block_migration": "auto"}}),
    ):
        nova = compute.client.post(
            f"{SERVERS}/{server_id}/action",
            json=body,
            headers={**headers, "OpenStack-API-Version": "compute latest"},
        )
        assert nova.status_code == 403
        words = str(escape(nova.json()["forbidden"]["message"]))
        resp = visitor.http.post(
            f"/project/instances/{server_id}/action/{slug}", data={"csrf_token": csrf}
        )
        assert resp.status_code == 403, resp.text
        assert words in resp.text
    resp = visitor.http.post(
        f"/project/instances/{server_id}/action/migrate", headers={**HTMX, "X-CSRF-Token": csrf}
    )
    assert "compute:migrate" in resp.text and "HTTP 403" in resp.text


def test_an_unknown_action_is_a_404_page(admin_visitor: Visitor) -> None:
    resp = admin_visitor.http.get("/project/instances/x/action/explode")
    assert resp.status_code == 404 and "no server action" in resp.text


def test_a_server_nova_could_not_place_shows_novas_fault(
    admin_visitor: Visitor, compute: Compute, cloud: Any
) -> None:
    big = {"flavor": {"name": "huge", "ram": 40000, "vcpus": 1, "disk": 1}}  # > the host
    made = cloud.client.post("/compute/v2.1/flavors", json=big, headers=cloud.admin)
    assert made.status_code == 200, made.text
    resp = compute.create(cloud.admin, name="huge", flavorRef=made.json()["flavor"]["id"])
    server_id = resp.json()["server"]["id"]
    compute.converge()
    shown = compute.show(server_id, cloud.admin)
    assert shown["status"] == "ERROR"
    panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
    words = str(escape(shown["fault"]["message"]))
    assert f'<p class="alert" role="alert">{words}</p>' in panel
    assert _buttons(panel) == ["stop", "reboot-hard", "rescue", "delete"]


@pytest.mark.parametrize(
    ("there", "back", "middle"),
    [
        ("pause", "unpause", "PAUSED"),
        ("suspend", "resume", "SUSPENDED"),
        ("rescue", "unrescue", "RESCUE"),
        ("reboot", "reboot-hard", "ACTIVE"),
    ],
)
def test_each_action_body_is_one_nova_accepts(
    admin_visitor: Visitor, compute: Compute, cloud: Any, there: str, back: str, middle: str
) -> None:
    """Every button's request runs: there and back again, the panel offering each step."""
    server_id = active_server(compute, cloud.admin)
    csrf = admin_visitor.page_csrf()
    for slug, status in ((there, middle), (back, "ACTIVE")):
        panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
        assert slug in _buttons(panel), (slug, panel)
        resp = admin_visitor.http.post(
            f"/project/instances/{server_id}/action/{slug}", data={"csrf_token": csrf}
        )
        assert resp.status_code == 303, resp.text
        compute.converge()
        assert compute.show(server_id, cloud.admin)["status"] == status, slug


def test_shelve_and_unshelve(
    admin_visitor: Visitor, compute: Compute, cloud: Any, tmp_path: Path
) -> None:
    compute.loop.scratch_dir = tmp_path / "snapshots"
    server_id = active_server(compute, cloud.admin)
    csrf = admin_visitor.page_csrf()
    url = f"/project/instances/{server_id}/action"
    assert admin_visitor.http.post(f"{url}/shelve", data={"csrf_token": csrf}).status_code == 303
    for _ in range(3):
        compute.converge()
    assert compute.show(server_id, cloud.admin)["status"].startswith("SHELVED")
    panel = admin_visitor.http.get(f"/project/instances/{server_id}/panel").text
    assert _buttons(panel) == ["unshelve", "delete"]
    assert admin_visitor.http.post(f"{url}/unshelve", data={"csrf_token": csrf}).status_code == 303
    for _ in range(3):
        compute.converge()
    assert compute.show(server_id, cloud.admin)["status"] == "ACTIVE"

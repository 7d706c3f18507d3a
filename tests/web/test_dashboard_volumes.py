"""The volumes pages, in process: Cinder's create, extend, snapshot and delete, Nova's
attach, refusals in place in the APIs' words, the live part polling only while something
is in flight, CSRF. No storage agent runs here: a new volume finds no backend (Cinder's
``error``), and a test that needs an available one says so in the database, as an agent
would have reported it."""

from __future__ import annotations

import re
from typing import Any

from kumo.db import models as m

from visitor import Visitor, create_server, form_csrf

PAGE = "/project/volumes"
VOLUMES = "/volume/v3/volumes"
POLL = 'hx-trigger="every 2s"'


def _cinder(cloud: Any, volume_id: str) -> dict[str, Any]:
    resp = cloud.client.get(f"{VOLUMES}/{volume_id}", headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    found: dict[str, Any] = resp.json()["volume"]
    return found


def _create(visitor: Visitor, cloud: Any, **form: str) -> str:
    csrf = form_csrf(visitor.http.get(PAGE).text)
    resp = visitor.http.post(PAGE, data={"size": "1", **form, "csrf_token": csrf})
    assert (resp.status_code, resp.headers["location"]) == (303, PAGE), resp.text
    listed = cloud.client.get(f"{VOLUMES}/detail", headers=cloud.admin).json()["volumes"]
    (made,) = [v for v in listed if v["name"] == form["name"]]
    return str(made["id"])


def _set_status(cloud: Any, volume_id: str, status: str) -> None:
    """What the volume's agent would have reported."""
    with cloud.db.session() as session:
        volume = session.get(m.Volume, volume_id)
        volume.status = status
        volume.task_deadline = None


def test_create_lists_the_volume_and_the_poll_stops_when_settled(
    admin_visitor: Visitor, cloud: Any
) -> None:
    volume_id = _create(admin_visitor, cloud, name="data", size="2")
    made = _cinder(cloud, volume_id)
    assert (made["size"], made["status"]) == (2, "error")  # no storage host here
    page = admin_visitor.http.get(PAGE).text
    row = re.search(rf'<tr id="volume-{volume_id}">.*?</tr>', page, re.S)
    assert row and "data" in row.group(0) and "2 GiB" in row.group(0)
    assert POLL not in page  # nothing in flight
    _set_status(cloud, volume_id, "creating")
    page = admin_visitor.http.get(PAGE).text
    assert POLL in page and 'hx-get="/project/volumes/rows"' in page
    rows = admin_visitor.http.get(PAGE + "/rows", headers={"HX-Request": "true"}).text
    assert POLL in rows and 'aria-label="Main"' not in rows and "creating" in rows
    _set_status(cloud, volume_id, "available")
    rows = admin_visitor.http.get(PAGE + "/rows", headers={"HX-Request": "true"}).text
    assert POLL not in rows and "available" in rows  # the last poll: it stops here


def test_refusals_are_shown_in_place_in_the_apis_words(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    csrf = form_csrf(admin_visitor.http.get(PAGE).text)
    resp = admin_visitor.http.post(PAGE, data={"name": "bad", "size": "-3", "csrf_token": csrf})
    assert resp.status_code == 400
    assert re.search(r'<p class="alert" role="alert">[^<]+</p>', resp.text), resp.text
    assert 'value="bad"' in resp.text  # the form kept
    volume_id = _create(admin_visitor, cloud, name="vol")
    _set_status(cloud, volume_id, "available")
    url = f"{PAGE}/{volume_id}"
    # Smaller than it is: Cinder's 400.
    resp = admin_visitor.http.post(url + "/extend", data={"new_size": "1", "csrf_token": csrf})
    assert resp.status_code == 400 and "<h1>vol</h1>" in resp.text
    cinder = cloud.client.post(
        f"{VOLUMES}/{volume_id}/action",
        json={"os-extend": {"new_size": 1}},
        headers=cloud.admin,
    ).json()
    message = next(iter(cinder.values()))["message"]
    assert message.replace("'", "&#39;") in resp.text
    # A server still building cannot take it: Nova's words.
    server_id = create_server(cloud, cloud.admin, image_id, "building")
    page = admin_visitor.http.get(url).text
    assert f'<option value="{server_id}">building</option>' in page
    resp = admin_visitor.http.post(
        url + "/attach", data={"server_id": server_id, "csrf_token": csrf}
    )
    assert resp.status_code in (400, 409), resp.text
    assert re.search(r'<p class="alert" role="alert">[^<]+</p>', resp.text)
    assert _cinder(cloud, volume_id)["status"] == "available"


def test_extend_snapshot_and_delete(admin_visitor: Visitor, cloud: Any) -> None:
    volume_id = _create(admin_visitor, cloud, name="grow")
    _set_status(cloud, volume_id, "available")
    url = f"{PAGE}/{volume_id}"
    page = admin_visitor.http.get(url)
    assert page.status_code == 200 and POLL not in page.text
    csrf = form_csrf(page.text)
    resp = admin_visitor.http.post(url + "/extend", data={"new_size": "3", "csrf_token": csrf})
    assert (resp.status_code, resp.headers["location"]) == (303, url)
    assert _cinder(cloud, volume_id)["status"] == "extending"
    page = admin_visitor.http.get(url).text
    assert POLL in page and f'hx-get="{url}/live"' in page
    live = admin_visitor.http.get(url + "/live", headers={"HX-Request": "true"}).text
    assert "extending" in live and POLL in live and "<nav" not in live
    _set_status(cloud, volume_id, "available")
    resp = admin_visitor.http.post(url + "/snapshots", data={"name": "snap-1", "csrf_token": csrf})
    assert resp.status_code == 303, resp.text
    snaps = cloud.client.get("/volume/v3/snapshots", headers=cloud.admin).json()["snapshots"]
    (snap,) = [s for s in snaps if s["name"] == "snap-1"]
    assert snap["volume_id"] == volume_id
    page = admin_visitor.http.get(url).text
    assert f'id="snapshot-{snap["id"]}"' in page
    assert 'aria-label="Confirm: delete snapshot snap-1"' in page
    listed = admin_visitor.http.get(PAGE).text
    assert f'<tr id="snapshot-{snap["id"]}">' in listed
    assert f'<a href="/project/volumes/{volume_id}">grow</a>' in listed
    # A volume with a snapshot: Cinder refuses its delete, in place.
    resp = admin_visitor.http.post(url + "/delete", data={"csrf_token": csrf})
    assert resp.status_code == 400, resp.text
    assert re.search(r'<p class="alert" role="alert">[^<]+</p>', resp.text)


def test_volume_changes_need_the_csrf_token(admin_visitor: Visitor, cloud: Any) -> None:
    volume_id = _create(admin_visitor, cloud, name="guarded")
    _set_status(cloud, volume_id, "available")
    url = f"{PAGE}/{volume_id}"
    for path, data in (
        (PAGE, {"name": "sneaky", "size": "1"}),
        (url + "/extend", {"new_size": "5"}),
        (url + "/delete", {}),
    ):
        resp = admin_visitor.http.post(path, data=data)
        assert resp.status_code == 403 and "carries no CSRF token" in resp.text
    shown = _cinder(cloud, volume_id)
    assert (shown["status"], shown["size"]) == ("available", 1)
    names = [v["name"] for v in cloud.client.get(VOLUMES, headers=cloud.admin).json()["volumes"]]
    assert "sneaky" not in names


def test_another_projects_volume_is_cinders_404(visitor: Visitor, cloud: Any) -> None:
    resp = cloud.client.post(
        VOLUMES, json={"volume": {"size": 1, "name": "admins-vol"}}, headers=cloud.admin
    )
    volume_id = resp.json()["volume"]["id"]
    cloud.user("mia", "mia-pw", project_id=cloud.boot.demo_project_id)
    visitor.sign_in("mia", "mia-pw")
    page = visitor.http.get(f"{PAGE}/{volume_id}")
    assert page.status_code == 404 and "admins-vol" not in page.text
    assert "admins-vol" not in visitor.http.get(PAGE).text


def test_storage_pages_have_no_inline_script_or_style(admin_visitor: Visitor, cloud: Any) -> None:
    volume_id = _create(admin_visitor, cloud, name="plain")
    image = cloud.client.post(
        "/image/v2/images",
        json={"name": "i", "disk_format": "raw", "container_format": "bare"},
        headers=cloud.admin,
    ).json()["id"]
    for path in (
        PAGE,
        f"{PAGE}/{volume_id}",
        "/project/images",
        "/project/images/new",
        f"/project/images/{image}",
        "/project/key-pairs",
    ):
        resp = admin_visitor.http.get(path)
        assert resp.status_code == 200, (path, resp.text)
        scripts = re.findall(r"<script[^>]*>", resp.text)
        assert all(' src="/static/' in s for s in scripts), (path, scripts)
        assert " style=" not in resp.text and "<style" not in resp.text, path
        assert re.search(r" on[a-z]+=", resp.text) is None, path  # no inline handlers


def test_the_list_pages_with_cinders_limit_and_marker(admin_visitor: Visitor, cloud: Any) -> None:
    ids = [_create(admin_visitor, cloud, name=f"v{i}") for i in range(3)]
    page = admin_visitor.http.get(PAGE + "?limit=2")
    assert page.status_code == 200, page.text
    shown = re.findall(r'<tr id="volume-([0-9a-f-]+)">', page.text)
    assert shown == list(reversed(ids))[:2]  # Cinder's default: newest first
    assert 'hx-get="/project/volumes/rows?limit=2"' in page.text  # the poll keeps the page
    nxt = re.search(r'href="([^"]+)" rel="next"', page.text)
    assert nxt, page.text
    page = admin_visitor.http.get(nxt.group(1).replace("&amp;", "&"))
    assert re.findall(r'<tr id="volume-([0-9a-f-]+)">', page.text) == [ids[0]]
    assert 'rel="next"' not in page.text and "First page" in page.text
    for query in ("limit=0", "limit=x", "limit=5000"):
        assert admin_visitor.http.get(f"{PAGE}?{query}").status_code == 400, query


def test_odd_input_is_the_apis_4xx_in_place_never_a_500(admin_visitor: Visitor, cloud: Any) -> None:
    volume_id = _create(admin_visitor, cloud, name="odd")
    _set_status(cloud, volume_id, "available")
    url = f"{PAGE}/{volume_id}"
    csrf = form_csrf(admin_visitor.http.get(url).text)
    for path, data in (
        (url + "/extend", {"new_size": "abc"}),
        (url + "/extend", {}),
        (url + "/attach", {"server_id": ""}),
        (url + "/attach", {"server_id": "../../os-keypairs"}),
        (url + "/detach", {"server_id": "no-such-server"}),
        (url + "/snapshots/no-such-snapshot/delete", {}),
        (PAGE, {"size": "", "source": "image", "image_id": "no-such-image"}),
        (PAGE, {"size": "1", "volume_type": "no-such-type"}),
        (f"{PAGE}/no-such-volume/delete", {}),
    ):
        resp = admin_visitor.http.post(path, data={**data, "csrf_token": csrf})
        assert 400 <= resp.status_code < 500, (path, data, resp.status_code, resp.text[-500:])
        assert re.search(r'<p class="alert" role="alert">[^<]+</p>', resp.text), (path, data)
    assert _cinder(cloud, volume_id)["status"] == "available"
    for path in (f"{PAGE}/no-such-volume", f"{PAGE}/%2E%2E", f"{PAGE}/no-such-volume/live"):
        resp = admin_visitor.http.get(path)
        assert 400 <= resp.status_code < 500, (path, resp.status_code)


def test_the_list_filters_with_cinders_name_and_status(admin_visitor: Visitor, cloud: Any) -> None:
    ready = _create(admin_visitor, cloud, name="ready")
    broken = _create(admin_visitor, cloud, name="broken")  # no backend here: error
    _set_status(cloud, ready, "available")
    page = admin_visitor.http.get(PAGE + "?name=ready").text
    assert re.findall(r'<tr id="volume-([0-9a-f-]+)">', page) == [ready]
    page = admin_visitor.http.get(PAGE + "?status=error").text
    assert re.findall(r'<tr id="volume-([0-9a-f-]+)">', page) == [broken]
    assert "<option selected>error</option>" in page
    assert 'hx-get="/project/volumes/rows?status=error"' in page
    page = admin_visitor.http.get(PAGE + "?name=none-such").text
    assert "No volumes match the filter." in page


def test_labels_are_metadata_keys_and_the_list_filters_by_one(
    admin_visitor: Visitor, cloud: Any
) -> None:
    """A volume's label is its metadata key ``kumo:label:<label>`` (Cinder has no tags),
    so Cinder's own metadata filter finds the volumes with it, as the CLI's --property."""
    labelled = _create(admin_visitor, cloud, name="labelled-vol")
    _create(admin_visitor, cloud, name="other-vol")
    page = admin_visitor.http.get(f"{PAGE}/{labelled}").text
    assert 'aria-label="Labels"' in page and "New label" in page
    resp = admin_visitor.http.post(
        f"{PAGE}/{labelled}/labels", data={"label": "team / web", "csrf_token": form_csrf(page)}
    )
    assert (resp.status_code, resp.headers["location"]) == (303, f"{PAGE}/{labelled}")
    assert _cinder(cloud, labelled)["metadata"] == {"kumo:label:team:web": "true"}
    page = admin_visitor.http.get(f"{PAGE}/{labelled}").text
    assert 'aria-label="Remove label team:web"' in page

    listed = admin_visitor.http.get(PAGE, params={"label": "team/web"}).text
    assert "labelled-vol" in listed and "other-vol" not in listed
    assert '<span class="label">team:web</span>' in listed
    assert "other-vol" in admin_visitor.http.get(PAGE).text
    none = admin_visitor.http.get(PAGE, params={"label": "nobody"}).text
    assert "No volumes match the filter." in none

    empty = admin_visitor.http.post(
        f"{PAGE}/{labelled}/labels", data={"label": " ", "csrf_token": form_csrf(page)}
    )
    assert empty.status_code == 400 and "A label cannot be empty." in empty.text
    remove = {"label": "team:web", "csrf_token": form_csrf(page)}
    resp = admin_visitor.http.post(f"{PAGE}/{labelled}/labels/remove", data=remove)
    assert resp.status_code == 303, resp.text
    assert _cinder(cloud, labelled)["metadata"] == {}
    # Without the CSRF token nothing changes.
    refused = admin_visitor.http.post(f"{PAGE}/{labelled}/labels", data={"label": "x"})
    assert refused.status_code == 403

"""Labels: the encoding and tree (kumo.web.labels), the server page's label editor
(Nova's tag calls, refusals in Nova's words) and the instances list filtered by a label
or a branch of the label tree, in process."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import update

from kumo.db import models as m
from kumo.web import labels

from visitor import SERVERS, Visitor, create_server, form_csrf, row_names

TAGS_VERSION = {"OpenStack-API-Version": "compute 2.26"}


def _active(cloud: Any, *server_ids: str) -> None:
    """Nova changes tags of ACTIVE/SHUTOFF/... servers only; no host runs these."""
    with cloud.db.session() as session:
        session.execute(
            update(m.Instance).where(m.Instance.id.in_(server_ids)).values(vm_state="active")
        )


def _nova_tags(cloud: Any, server_id: str) -> list[str]:
    resp = cloud.client.get(f"{SERVERS}/{server_id}/tags", headers={**cloud.admin, **TAGS_VERSION})
    assert resp.status_code == 200, resp.text
    return sorted(resp.json()["tags"])


def test_typed_slashes_are_stored_as_colons_and_shown_as_a_tree() -> None:
    assert labels.normalize(" team / web ") == "team:web"
    assert labels.normalize("env:prod") == "env:prod"
    nodes = labels.tree(["team:web", "env", "team:db:primary", "team:web"])
    assert [n.name for n in nodes] == ["env", "team"]
    team = nodes[1]
    assert not team.present and [c.name for c in team.children] == ["db", "web"]
    assert team.labels == ["team:db:primary", "team:web"]
    assert team.children[0].children[0].path == "team:db:primary"
    assert nodes[0].present and nodes[0].labels == ["env"]


def test_label_editor_adds_and_removes_novas_tags(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    server_id = create_server(cloud, cloud.admin, image_id, "web-1")
    _active(cloud, server_id)
    page = admin_visitor.http.get(f"/project/instances/{server_id}")
    assert 'aria-label="Labels"' in page.text and "Add label" in page.text
    csrf = form_csrf(page.text)
    url = f"/project/instances/{server_id}/labels"
    htmx = {"HX-Request": "true"}
    resp = admin_visitor.http.post(
        url, data={"label": "team/web", "csrf_token": csrf}, headers=htmx
    )
    assert resp.status_code == 200, resp.text
    assert '<span class="label">team:web</span>' in resp.text and "<nav" not in resp.text
    assert _nova_tags(cloud, server_id) == ["team:web"]  # what `openstack server show` lists
    # Without htmx: the form posts and the server page comes back.
    resp = admin_visitor.http.post(url, data={"label": "env", "csrf_token": csrf})
    assert resp.status_code == 303 and resp.headers["location"].endswith(server_id)
    assert _nova_tags(cloud, server_id) == ["env", "team:web"]
    page = admin_visitor.http.get(f"/project/instances/{server_id}").text
    assert 'aria-label="Remove label team:web"' in page
    resp = admin_visitor.http.post(
        url + "/remove", data={"label": "team:web", "csrf_token": csrf}, headers=htmx
    )
    assert resp.status_code == 200 and '<span class="label">team:web</span>' not in resp.text
    assert _nova_tags(cloud, server_id) == ["env"]
    # Without the CSRF token: refused, nothing changed.
    resp = admin_visitor.http.post(url, data={"label": "x"})
    assert resp.status_code == 403
    assert _nova_tags(cloud, server_id) == ["env"]


def test_novas_refusal_is_shown_in_the_editor_in_its_words(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    server_id = create_server(cloud, cloud.admin, image_id, "building-1")  # BUILD: 409
    csrf = admin_visitor.page_csrf()
    url = f"/project/instances/{server_id}/labels"
    nova = cloud.client.put(
        f"{SERVERS}/{server_id}/tags/env", headers={**cloud.admin, **TAGS_VERSION}
    )
    assert nova.status_code == 409
    words = nova.json()["conflictingRequest"]["message"]
    resp = admin_visitor.http.post(
        url, data={"label": "env", "csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert resp.status_code == 200
    assert re.search(r'<p class="alert" role="alert">([^<]*)</p>', resp.text).group(1) == (  # type: ignore[union-attr]
        words.replace("'", "&#39;")
    )
    # A comma is Nova's 400, in its words too; without htmx an error page with its status.
    _active(cloud, server_id)
    resp = admin_visitor.http.post(url, data={"label": "a,b", "csrf_token": csrf})
    assert resp.status_code == 400 and "does not match" in resp.text
    assert _nova_tags(cloud, server_id) == []


def test_list_filters_by_a_label_and_by_a_branch_of_the_tree(
    admin_visitor: Visitor, cloud: Any, image_id: str
) -> None:
    ids = {n: create_server(cloud, cloud.admin, image_id, n) for n in ("a", "b", "c", "d")}
    _active(cloud, *ids.values())
    for name, tag in (("a", "team:web"), ("b", "team:db"), ("c", "env"), ("a", "env")):
        resp = cloud.client.put(
            f"{SERVERS}/{ids[name]}/tags/{tag}", headers={**cloud.admin, **TAGS_VERSION}
        )
        assert resp.status_code == 201, resp.text
    sort = "&sort=name&dir=asc"
    page = admin_visitor.http.get("/project/instances?tag=env" + sort)
    assert row_names(page.text) == ["a", "c"]
    # A typed slash is the tree's separator, as stored.
    page = admin_visitor.http.get("/project/instances?tag=team/web" + sort)
    assert row_names(page.text) == ["a"]
    tree_url = re.search(r'hx-get="(/project/labels/instances[^"]*)"', page.text)
    assert tree_url, page.text
    tree = admin_visitor.http.get(tree_url.group(1).replace("&amp;", "&")).text
    branch = re.search(r'<a href="([^"]+)"[^>]*>team</a>', tree)
    assert branch, tree
    assert re.search(r'<a href="[^"]+"[^>]*>web</a>', tree)
    page = admin_visitor.http.get(branch.group(1).replace("&amp;", "&") + sort)
    assert row_names(page.text) == ["a", "b"]  # Nova's tags-any=team:db,team:web
    assert '<span class="label">team:db</span>' in page.text
    page = admin_visitor.http.get("/project/instances?tag=nobody" + sort)
    assert row_names(page.text) == [] and "No instances match the filter." in page.text

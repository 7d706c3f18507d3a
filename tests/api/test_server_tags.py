"""Server tags (compute 2.26): every route and status, Nova's limits and words, states,
locks, project isolation, the list filters with pages, the views at 2.25 and 2.26, and a
change that lost its write to a concurrent one, on every database backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from test_servers import SERVERS, Compute

from kumo.core.compute import servers as core_servers
from kumo.db import models as m
from kumo.db.server_tag_tables import InstanceTag


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _at(headers: dict[str, str], version: str = "2.26") -> dict[str, str]:
    return {**headers, "X-OpenStack-Nova-API-Version": version}


def _active(compute: Compute, headers: dict[str, str], name: str = "vm") -> str:
    resp = compute.create(headers, name=name)
    assert resp.status_code == 202, resp.text
    compute.converge()
    server_id: str = resp.json()["server"]["id"]
    return server_id


def _message(resp: Any, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert len(body) == 1
    (fault,) = body.values()
    assert fault["code"] == status
    message: str = fault["message"]
    return message


def test_every_route_and_status(compute: Compute) -> None:
    c, admin = compute.client, _at(compute.cloud.admin)
    server_id = _active(compute, compute.cloud.admin)
    url = f"{SERVERS}/{server_id}/tags"
    assert c.get(url, headers=admin).json() == {"tags": []}
    created = c.put(f"{url}/web", headers=admin)
    assert created.status_code == 201, created.text
    assert created.content == b""
    assert created.headers["Location"].endswith(f"/compute/v2.1/servers/{server_id}/tags/web")
    assert c.put(f"{url}/web", headers=admin).status_code == 204  # already there
    assert c.get(f"{url}/web", headers=admin).status_code == 204
    missing = c.get(f"{url}/db", headers=admin)
    assert _message(missing, 404) == f"Server {server_id} has no tag 'db'"
    # Tags differ by case, and a tag is any character but '/' and ',' (quoted in Location).
    assert c.put(f"{url}/Web", headers=admin).status_code == 201
    spaced = c.put(f"{url}/a b", headers=admin)
    assert spaced.headers["Location"].endswith("/tags/a%20b")
    replaced = c.put(url, json={"tags": ["z", "db", "z", "Web"]}, headers=admin)
    assert (replaced.status_code, replaced.json()) == (200, {"tags": ["Web", "db", "z"]})
    assert c.get(url, headers=admin).json() == {"tags": ["Web", "db", "z"]}
    assert compute.show(server_id, admin)["tags"] == ["Web", "db", "z"]
    deleted = c.delete(f"{url}/db", headers=admin)
    assert (deleted.status_code, deleted.content) == (204, b"")
    gone = c.delete(f"{url}/db", headers=admin)
    assert _message(gone, 404) == f"Instance {server_id} has no tag 'db'"
    assert c.delete(url, headers=admin).status_code == 204
    assert c.get(url, headers=admin).json() == {"tags": []}
    assert c.put(url, json={"tags": []}, headers=admin).json() == {"tags": []}
    with compute.db.session() as session:
        assert session.scalars(select(InstanceTag)).all() == []


def test_routes_do_not_exist_below_2_26_and_views_show_tags_from_it(compute: Compute) -> None:
    c, admin = compute.client, compute.cloud.admin
    server_id = _active(compute, admin)
    url = f"{SERVERS}/{server_id}/tags"
    assert c.put(f"{url}/web", headers=_at(admin)).status_code == 201
    old = _at(admin, "2.25")
    for method, path, body in (
        ("get", "", None),
        ("put", "", {"tags": ["x"]}),
        ("delete", "", None),
        ("get", "/web", None),
        ("put", "/x", None),
        ("delete", "/web", None),
    ):
        resp = c.request(method.upper(), url + path, json=body, headers=old)
        assert _message(resp, 404) == "The resource could not be found.", (method, path)
    assert c.get(url, headers=_at(admin)).json() == {"tags": ["web"]}  # nothing changed
    assert "tags" not in compute.show(server_id, old)
    listed = c.get(f"{SERVERS}/detail", headers=old).json()["servers"]
    assert "tags" not in listed[0]
    assert compute.show(server_id, _at(admin))["tags"] == ["web"]
    listed = c.get(f"{SERVERS}/detail", headers=_at(admin)).json()["servers"]
    assert listed[0]["tags"] == ["web"]
    assert "tags" not in c.get(SERVERS, headers=_at(admin)).json()["servers"][0]
    # The update and rebuild answers show them too (Nova's view, Tempest's 2.26 schemas).
    renamed = c.put(f"{SERVERS}/{server_id}", json={"server": {"name": "n"}}, headers=_at(admin))
    assert renamed.json()["server"]["tags"] == ["web"]
    renamed = c.put(f"{SERVERS}/{server_id}", json={"server": {"name": "o"}}, headers=old)
    assert "tags" not in renamed.json()["server"]
    rebuilt = compute.action(server_id, _at(admin), {"rebuild": {"imageRef": compute.image_id}})
    assert rebuilt.status_code == 202, rebuilt.text
    assert rebuilt.json()["server"]["tags"] == ["web"]


def test_limits_and_bad_input_are_400_in_novas_words(compute: Compute) -> None:
    c, admin = compute.client, _at(compute.cloud.admin)
    server_id = _active(compute, compute.cloud.admin)
    url = f"{SERVERS}/{server_id}/tags"
    fifty = [f"t{i:02d}" for i in range(50)]
    assert c.put(url, json={"tags": fifty}, headers=admin).json() == {"tags": fifty}
    # A 51st: refused, even when the tag is one the server has (Nova counts first).
    for tag in ("t50", "t00"):
        full = c.put(f"{url}/{tag}", headers=admin)
        assert _message(full, 400) == "The number of tags exceeded the per-server limit 50"
    too_many = c.put(url, json={"tags": [*fifty, "t50"]}, headers=admin)
    assert _message(too_many, 400).startswith("Invalid input for field/attribute tags.")
    assert c.get(url, headers=admin).json() == {"tags": fifty}
    assert c.delete(url, headers=admin).status_code == 204
    longest = "x" * 60
    assert c.put(f"{url}/{longest}", headers=admin).status_code == 201
    for tag, why in (("x" * 61, "is too long"), ("a,b", "does not match '^[^,/]*$'")):
        bad = c.put(f"{url}/{tag}", headers=admin)
        assert _message(bad, 400) == (
            f"Tag '{tag}' is invalid. It must be a non empty string without characters '/' "
            f"and ','. Validation error message: '{tag}' {why}"
        )
    for body, words in (
        ({"tags": ["ok", "a/b"]}, "Invalid input for field/attribute 1. Value: a/b. 'a/b' does"),
        ({"tags": [""]}, "Invalid input for field/attribute 0. Value: . '' is too short"),
        ({"tags": ["x" * 61]}, "is too long"),
        ({"tags": ["ok", 5]}, "Invalid input for field/attribute 1. Value: 5. 5 is not of"),
        ({"tags": "a,b"}, "is not of type 'array'"),
        ({"tags": ["a"], "other": 1}, "Additional properties are not allowed ('other' was"),
        ({}, "'tags' is a required property"),
        (["a"], "is not of type 'object'"),
        (None, "is not of type 'object'"),
    ):
        resp = c.put(url, json=body, headers=admin)
        assert words in _message(resp, 400), body
    # PUT of one tag takes no body (Nova's schema: null).
    assert c.put(f"{url}/t", json=None, headers=admin).status_code == 201
    with_body = c.put(f"{url}/u", json={"tag": "u"}, headers=admin)
    assert "is not of type 'null'" in _message(with_body, 400)
    # PostgreSQL text cannot hold NUL: refused in the body, the path and the query alike
    # (kumo.api.nul_guard; every service answers a NUL with a 400).
    nul = c.put(url, json={"tags": ["a\u0000b"]}, headers=admin)
    assert "contains a NUL character" in _message(nul, 400)
    for method in ("PUT", "GET", "DELETE"):
        resp = c.request(method, f"{url}/a%00b", headers=admin)
        assert "NUL character" in _message(resp, 400), method
    for query in ("tags=%00", "tags-any=%00", "not-tags=%00,t", "not-tags-any=%00"):
        listed = c.get(f"{SERVERS}?{query}", headers=admin)
        assert "NUL character" in _message(listed, 400), query
    malformed = c.put(url, content=b"{", headers={**admin, "Content-Type": "application/json"})
    assert _message(malformed, 400).startswith("Malformed request body")
    assert c.get(url, headers=admin).json() == {"tags": ["t", longest]}


def test_other_projects_get_404_and_admins_see_all(compute: Compute) -> None:
    cloud, c = compute.cloud, compute.client
    a, b = cloud.project("tags-a"), cloud.project("tags-b")
    _, token_a = cloud.member("tags-ua", a["id"])
    _, token_b = cloud.member("tags-ub", b["id"])
    owner, stranger = _at(cloud.h(token_a)), _at(cloud.h(token_b))
    server_id = _active(compute, cloud.h(token_a))
    url = f"{SERVERS}/{server_id}/tags"
    assert c.put(f"{url}/mine", headers=owner).status_code == 201
    for method, path, body in (
        ("GET", "", None),
        ("PUT", "", {"tags": ["x"]}),
        ("DELETE", "", None),
        ("GET", "/mine", None),
        ("PUT", "/x", None),
        ("DELETE", "/mine", None),
    ):
        resp = c.request(method, url + path, json=body, headers=stranger)
        assert _message(resp, 404) == f"Instance {server_id} could not be found.", method
    assert c.get(url, headers=owner).json() == {"tags": ["mine"]}
    assert c.put(f"{url}/admin", headers=_at(cloud.admin)).status_code == 201
    assert c.get(url, headers=owner).json() == {"tags": ["admin", "mine"]}
    # A reader of the project sees the tags but may not change them (Nova's policies).
    _, reader_token = cloud.member("tags-reader", a["id"], role="reader")
    reader = _at(cloud.h(reader_token))
    assert c.get(url, headers=reader).json() == {"tags": ["admin", "mine"]}
    assert c.get(f"{url}/mine", headers=reader).status_code == 204
    for method, path, body, rule in (
        ("PUT", "", {"tags": ["x"]}, "update_all"),
        ("DELETE", "", None, "delete_all"),
        ("PUT", "/x", None, "update"),
        ("DELETE", "/mine", None, "delete"),
    ):
        resp = c.request(method, url + path, json=body, headers=reader)
        assert _message(resp, 403) == (
            f"You are not authorized to perform the requested action: compute:server_tags:{rule}."
        )
    unknown = c.get(f"{SERVERS}/{'0' * 8}-0000-4000-8000-{'0' * 12}/tags", headers=owner)
    assert unknown.status_code == 404
    # A deleted server's tags stay with its row, but its routes are gone.
    assert c.delete(f"{SERVERS}/{server_id}", headers=owner).status_code == 204
    compute.converge()
    assert c.get(url, headers=owner).status_code == 404
    with compute.db.session() as session:
        kept = session.scalars(select(InstanceTag.tag).where(InstanceTag.instance_id == server_id))
        assert sorted(kept) == ["admin", "mine"]


def test_changes_need_a_settled_vm_state_but_not_an_unlocked_server(compute: Compute) -> None:
    c, admin = compute.client, _at(compute.cloud.admin)
    building = compute.create(compute.cloud.admin).json()["server"]["id"]  # not scheduled
    url = f"{SERVERS}/{building}/tags"
    for method, path, body, verb in (
        ("PUT", "/x", None, "update tag"),
        ("PUT", "", {"tags": ["x"]}, "update tags"),
        ("DELETE", "/x", None, "delete tag"),
        ("DELETE", "", None, "delete tags"),
    ):
        resp = c.request(method, url + path, json=body, headers=admin)
        assert _message(resp, 409) == (
            f"Cannot '{verb}' instance {building} while it is in vm_state building"
        )
    assert c.get(url, headers=admin).json() == {"tags": []}  # reading is fine
    assert c.get(f"{url}/x", headers=admin).status_code == 404
    # A locked server (its owner's changes of other kinds are refused) takes tags, and a
    # task in flight does not matter: Nova checks the vm_state alone.
    cloud = compute.cloud
    project = cloud.project("tags-lock")
    _, token = cloud.member("tags-lock-u", project["id"])
    owner = _at(cloud.h(token))
    server_id = _active(compute, cloud.h(token))
    assert compute.action(server_id, owner, {"lock": None}).status_code == 202
    url = f"{SERVERS}/{server_id}/tags"
    assert c.put(f"{url}/locked", headers=owner).status_code == 201
    with compute.db.session() as session:
        session.execute(
            update(m.Instance).where(m.Instance.id == server_id).values(task_state="rebooting")
        )
    assert c.put(url, json={"tags": ["busy"]}, headers=owner).json() == {"tags": ["busy"]}
    with compute.db.session() as session:
        session.execute(
            update(m.Instance)
            .where(m.Instance.id == server_id)
            .values(vm_state="error", task_state=None)
        )
    refused = c.delete(f"{url}/busy", headers=owner)
    assert "while it is in vm_state error" in _message(refused, 409)


def test_a_change_that_lost_its_write_repeats(
    compute: Compute, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent report commits on the server's row between the tag change's read and its
    write: the change reads the row again and goes through, once. Changes leave the
    server's updated time as it was (Nova's tag changes do not touch the server)."""
    c, admin = compute.client, _at(compute.cloud.admin)
    server_id = _active(compute, compute.cloud.admin)
    real_get = core_servers.get
    reads: list[str] = []

    def get_then_a_report_lands(*args: Any, **kwargs: Any) -> m.Instance:
        instance = real_get(*args, **kwargs)
        reads.append(instance.id)
        if len(reads) == 1:
            with compute.db.session() as other:
                other.execute(
                    update(m.Instance)
                    .where(m.Instance.id == server_id)
                    .values(version=m.Instance.version + 1)
                )
        return instance

    monkeypatch.setattr(core_servers, "get", get_then_a_report_lands)
    resp = c.put(f"{SERVERS}/{server_id}/tags/raced", headers=admin)
    assert resp.status_code == 201, resp.text
    assert reads == [server_id, server_id]
    monkeypatch.undo()
    assert c.get(f"{SERVERS}/{server_id}/tags", headers=admin).json() == {"tags": ["raced"]}
    long_ago = dt.datetime(2020, 1, 1, 12, 0)
    with compute.db.session() as session:
        session.execute(
            update(m.Instance).where(m.Instance.id == server_id).values(updated_at=long_ago)
        )
    assert c.put(f"{SERVERS}/{server_id}/tags/more", headers=admin).status_code == 201
    assert c.delete(f"{SERVERS}/{server_id}/tags", headers=admin).status_code == 204
    assert compute.show(server_id, admin)["updated"] == "2020-01-01T12:00:00Z"


def _listed(compute: Compute, query: str, version: str = "2.26") -> list[str]:
    resp = compute.client.get(f"{SERVERS}?{query}", headers=_at(compute.cloud.admin, version))
    assert resp.status_code == 200, resp.text
    return [s["name"] for s in resp.json()["servers"]]


def test_list_filters_with_novas_four_semantics_and_pages(compute: Compute) -> None:
    c, admin = compute.client, _at(compute.cloud.admin)
    tagged = {"s1": ["a", "b"], "s2": ["a"], "s3": ["b", "c"], "s4": []}
    for name, tags in tagged.items():
        server_id = _active(compute, compute.cloud.admin, name)
        resp = c.put(f"{SERVERS}/{server_id}/tags", json={"tags": tags}, headers=admin)
        assert resp.status_code == 200, resp.text
    by_name = "sort_key=name&sort_dir=asc"
    for query, expected in (
        ("tags=a,b", ["s1"]),
        ("tags=a", ["s1", "s2"]),
        ("tags=A", []),
        ("tags-any=a,c", ["s1", "s2", "s3"]),
        ("not-tags=a,b", ["s2", "s3", "s4"]),
        ("not-tags-any=a", ["s3", "s4"]),
        ("not-tags-any=a,c", ["s4"]),
        ("tags-any=b&not-tags=b,c", ["s1"]),
        ("tags=a&not-tags-any=b", ["s2"]),
        ("tags=", []),  # the one tag "", which no server has
        ("not-tags=", ["s1", "s2", "s3", "s4"]),
        ("tags=nope", []),
    ):
        assert _listed(compute, f"{query}&{by_name}") == expected, query
        detail = c.get(f"{SERVERS}/detail?{query}&{by_name}", headers=admin).json()
        assert [s["name"] for s in detail["servers"]] == expected, query
        assert [s["tags"] for s in detail["servers"]] == [tagged[n] for n in expected]
    # Below 2.26 Nova ignores them.
    assert _listed(compute, f"tags=a&not-tags-any=b&{by_name}", "2.25") == list(tagged)
    # Pages follow markers through a filtered list, in either order and by another key.
    for sort in (by_name, "sort_key=name&sort_dir=desc", ""):
        whole = _listed(compute, f"tags-any=a,c&{sort}")
        assert sorted(whole) == ["s1", "s2", "s3"]
        seen: list[str] = []
        marker = ""
        while True:
            resp = c.get(f"{SERVERS}?tags-any=a,c&{sort}&limit=2{marker}", headers=admin)
            body = resp.json()
            seen += [s["name"] for s in body["servers"]]
            links = body.get("servers_links")
            if not links:
                break
            assert "tags-any=a%2Cc" in links[0]["href"] or "tags-any=a,c" in links[0]["href"]
            marker = "&marker=" + links[0]["href"].split("marker=", 1)[1].split("&", 1)[0]
        assert seen == whole, sort

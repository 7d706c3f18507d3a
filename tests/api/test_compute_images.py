"""Nova's image proxy /compute/v2.1/images: views, filters, paging, delete, metadata,
visibility and ownership, with Nova's error shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kumo.db import models as m

IMAGES = "/compute/v2.1/images"
GLANCE = "/image/v2/images"


def _error(resp: Any, status: int, kind: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()[kind]
    assert body["code"] == status
    message: str = body["message"]
    return message


class Env:
    def __init__(self, cloud: Any) -> None:
        self.cloud = cloud
        self.c = cloud.client
        self.admin = cloud.admin
        self.p1 = cloud.project("img-p1")
        self.p2 = cloud.project("img-p2")
        self.u1 = cloud.h(cloud.member("img-u1", self.p1["id"])[1])
        self.u2 = cloud.h(cloud.member("img-u2", self.p2["id"])[1])

    def image(self, headers: dict[str, str], **body: Any) -> str:
        body.setdefault("disk_format", "qcow2")
        body.setdefault("container_format", "bare")
        resp = self.c.post(GLANCE, json=body, headers=headers)
        assert resp.status_code == 201, resp.text
        image_id: str = resp.json()["id"]
        return image_id

    def activate(self, image_id: str, size: int = 1024) -> None:
        with self.cloud.db.session() as session:
            row = session.get(m.Image, image_id)
            row.status, row.size = "active", size


@pytest.fixture
def env(cloud: Any) -> Env:
    return Env(cloud)


def test_list_detail_and_show_shapes(env: Env) -> None:
    server_id = "5f1f3b3e-0000-4000-8000-000000000001"
    image_id = env.image(
        env.u1,
        name="snap",
        min_ram=64,
        min_disk=2,
        instance_uuid=server_id,
        image_type="snapshot",
    )
    queued = env.c.get(f"{IMAGES}/{image_id}", headers=env.u1).json()["image"]
    assert (queued["status"], queued["progress"]) == ("SAVING", 25)
    env.activate(image_id)
    view = env.c.get(f"{IMAGES}/{image_id}", headers=env.u1).json()["image"]
    assert view["id"] == image_id and view["name"] == "snap"
    assert (view["status"], view["progress"]) == ("ACTIVE", 100)
    assert (view["minRam"], view["minDisk"], view["OS-EXT-IMG-SIZE:size"]) == (64, 2, 1024)
    assert view["metadata"] == {"instance_uuid": server_id, "image_type": "snapshot"}
    assert view["server"]["id"] == server_id
    assert view["server"]["links"][0]["href"].endswith(f"/compute/v2.1/servers/{server_id}")
    rels = [link["rel"] for link in view["links"]]
    assert rels == ["self", "bookmark", "alternate"]
    assert view["created"].endswith("Z") and view["updated"].endswith("Z")
    listed = env.c.get(IMAGES, headers=env.u1).json()["images"]
    mine = [i for i in listed if i["id"] == image_id]
    assert mine and set(mine[0]) == {"id", "name", "links"}
    detail = env.c.get(f"{IMAGES}/detail", headers=env.u1).json()["images"]
    assert next(i for i in detail if i["id"] == image_id) == view


def test_visibility_private_of_other_project_is_404(env: Env) -> None:
    private = env.image(env.u1, name="mine", visibility="private")
    public = env.image(env.admin, name="pub", visibility="public")
    msg = _error(env.c.get(f"{IMAGES}/{private}", headers=env.u2), 404, "itemNotFound")
    assert msg == "Image not found."
    ids = {i["id"] for i in env.c.get(IMAGES, headers=env.u2).json()["images"]}
    assert public in ids and private not in ids
    assert private in {i["id"] for i in env.c.get(IMAGES, headers=env.admin).json()["images"]}
    _error(env.c.get(f"{IMAGES}/{private}/metadata", headers=env.u2), 404, "itemNotFound")
    _error(env.c.delete(f"{IMAGES}/{private}", headers=env.u2), 404, "itemNotFound")


@pytest.mark.parametrize("bad", ["nope", "-1", "1" * 40, "00000000-0000-4000-8000-000000000000"])
def test_show_and_delete_unknown_ids_are_404(env: Env, bad: str) -> None:
    _error(env.c.get(f"{IMAGES}/{bad}", headers=env.u1), 404, "itemNotFound")
    _error(env.c.delete(f"{IMAGES}/{bad}", headers=env.u1), 404, "itemNotFound")


def test_blank_id_is_404(env: Env) -> None:
    _error(env.c.delete(f"{IMAGES}/", headers=env.u1), 404, "itemNotFound")


def test_filters(env: Env) -> None:
    server_id = "5f1f3b3e-0000-4000-8000-000000000002"
    a = env.image(env.u1, name="fa", min_ram=512, min_disk=1)
    b = env.image(env.u1, name="fb", instance_uuid=server_id, image_type="snapshot", min_disk=5)
    c = env.image(env.u1, name="fc", image_type="backup")
    env.activate(a)
    env.activate(b)

    def ids(**params: Any) -> set[str]:
        resp = env.c.get(IMAGES, params=params, headers=env.u1)
        assert resp.status_code == 200, resp.text
        return {i["id"] for i in resp.json()["images"]} & {a, b, c}

    assert ids() == {a, b, c}
    assert ids(name="fa") == {a}
    assert ids(status="ACTIVE") == {a, b}
    assert ids(status="SAVING") == set()  # queued is SAVING in Nova's view, not saving
    assert ids(type="snapshot") == {b}
    assert ids(server=server_id) == {b}
    assert ids(server=f"http://x/compute/v2.1/servers/{server_id}") == {b}
    assert ids(minRam="256") == {a}
    assert ids(minDisk="2") == {b}
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(**{"changes-since": future}) == set()
    assert ids(**{"changes-since": "2000-01-01T00:00:00Z"}) == {a, b, c}
    for params in (
        {"status": "BOGUS"},
        {"minRam": "x"},
        {"minDisk": "-1"},
        {"limit": "x"},
        {"changes-since": "yesterday"},
        {"marker": "00000000-0000-4000-8000-000000000000"},
    ):
        resp = env.c.get(f"{IMAGES}/detail", params=params, headers=env.u1)
        _error(resp, 400, "badRequest")


def test_limit_and_marker_pages_with_next_link(env: Env) -> None:
    made = [env.image(env.u1, name=f"page{i}") for i in range(3)]
    resp = env.c.get(f"{IMAGES}/detail", params={"limit": "1"}, headers=env.u1)
    body = resp.json()
    assert len(body["images"]) == 1
    nxt = body["images_links"][0]
    assert nxt["rel"] == "next" and "marker=" in nxt["href"] and "/images/detail?" in nxt["href"]
    seen = [body["images"][0]["id"]]
    while len(seen) < 3:
        resp = env.c.get(IMAGES, params={"limit": "1", "marker": seen[-1]}, headers=env.u1)
        seen.append(resp.json()["images"][0]["id"])
    assert set(seen) == set(made)
    assert "images_links" not in env.c.get(IMAGES, headers=env.u1).json()


def test_delete_rules(env: Env) -> None:
    own = env.image(env.u1, name="del")
    resp = env.c.delete(f"{IMAGES}/{own}", headers=env.u1)
    assert resp.status_code == 204
    _error(env.c.get(f"{IMAGES}/{own}", headers=env.u1), 404, "itemNotFound")
    public = env.image(env.admin, name="shared-pub", visibility="public")
    _error(env.c.delete(f"{IMAGES}/{public}", headers=env.u2), 403, "forbidden")
    protected = env.image(env.u1, name="prot", protected=True)
    _error(env.c.delete(f"{IMAGES}/{protected}", headers=env.u1), 403, "forbidden")
    assert env.c.get(f"{IMAGES}/{protected}", headers=env.u1).status_code == 200


def test_metadata_crud(env: Env) -> None:
    image_id = env.image(env.u1, name="meta", os_distro="a", os_version="1")
    url = f"{IMAGES}/{image_id}/metadata"
    c, h = env.c, env.u1
    assert c.get(url, headers=h).json() == {"metadata": {"os_distro": "a", "os_version": "1"}}
    resp = c.post(url, json={"metadata": {"os_distro": "b", "k": "v"}}, headers=h)
    assert resp.json() == {"metadata": {"os_distro": "b", "os_version": "1", "k": "v"}}
    resp = c.put(url, json={"metadata": {"only": "x"}}, headers=h)
    assert resp.json() == {"metadata": {"only": "x"}}
    assert c.get(f"{url}/only", headers=h).json() == {"meta": {"only": "x"}}
    resp = c.put(f"{url}/new", json={"meta": {"new": "y"}}, headers=h)
    assert (resp.status_code, resp.json()) == (200, {"meta": {"new": "y"}})
    assert c.delete(f"{url}/only", headers=h).status_code == 204
    assert c.get(url, headers=h).json() == {"metadata": {"new": "y"}}
    glance = c.get(f"{GLANCE}/{image_id}", headers=h).json()
    assert glance["new"] == "y" and "only" not in glance


def test_metadata_bad_requests(env: Env) -> None:
    image_id = env.image(env.u1, name="meta-bad", k="v")
    url = f"{IMAGES}/{image_id}/metadata"
    c, h = env.c, env.u1
    _error(c.get(f"{url}/missing", headers=h), 404, "itemNotFound")
    _error(c.delete(f"{url}/missing", headers=h), 404, "itemNotFound")
    _error(c.put(f"{url}/a", json={"meta": {"b": "1"}}, headers=h), 400, "badRequest")
    body = {"meta": {"a": "1", "b": "2"}}
    _error(c.put(f"{url}/a", json=body, headers=h), 400, "badRequest")
    _error(c.put(f"{url}/a", json={"nometa": {}}, headers=h), 400, "badRequest")
    _error(c.post(url, json={"other": {}}, headers=h), 400, "badRequest")
    _error(c.post(url, json={"metadata": {"k": 1}}, headers=h), 400, "badRequest")
    _error(c.post(url, json={"metadata": {"": "v"}}, headers=h), 400, "badRequest")
    _error(c.post(url, json={"metadata": {"k": "x" * 256}}, headers=h), 400, "badRequest")
    _error(c.post(url, json={"metadata": {"min_ram": "1"}}, headers=h), 400, "badRequest")
    _error(c.put(url, json={"metadata": []}, headers=h), 400, "badRequest")
    assert c.get(url, headers=h).json() == {"metadata": {"k": "v"}}
    missing = "00000000-0000-4000-8000-000000000000"
    _error(c.get(f"{IMAGES}/{missing}/metadata", headers=h), 404, "itemNotFound")
    _error(
        c.put(f"{IMAGES}/{missing}/metadata", json={"metadata": {}}, headers=h), 404, "itemNotFound"
    )


def test_metadata_of_someone_elses_public_image_is_403(env: Env) -> None:
    public = env.image(env.admin, name="pub-meta", visibility="public")
    url = f"{IMAGES}/{public}/metadata"
    assert env.c.get(url, headers=env.u2).status_code == 200
    _error(env.c.post(url, json={"metadata": {"a": "b"}}, headers=env.u2), 403, "forbidden")
    _error(env.c.delete(f"{url}/a", headers=env.u2), 404, "itemNotFound")


def test_metadata_items_quota(env: Env) -> None:
    image_id = env.image(env.u1, name="quota")
    with env.cloud.db.session() as session:
        session.add(m.QuotaLimit(project_id=env.p1["id"], resource="metadata_items", hard_limit=2))
    url = f"{IMAGES}/{image_id}/metadata"
    assert (
        env.c.post(url, json={"metadata": {"a": "1", "b": "2"}}, headers=env.u1).status_code == 200
    )
    resp = env.c.put(f"{url}/c", json={"meta": {"c": "3"}}, headers=env.u1)
    _error(resp, 403, "forbidden")
    assert env.c.get(url, headers=env.u1).json() == {"metadata": {"a": "1", "b": "2"}}


def test_glance_image_tasks_are_empty_for_a_visible_image(env: Env) -> None:
    private = env.image(env.u1, name="tasks", visibility="private")
    resp = env.c.get(f"{GLANCE}/{private}/tasks", headers=env.u1)
    assert (resp.status_code, resp.json()) == (200, {"tasks": []})
    assert env.c.get(f"{GLANCE}/{private}/tasks", headers=env.u2).status_code == 404


def test_empty_tenant_usage_id_is_404(env: Env) -> None:
    resp = env.c.get("/compute/v2.1/os-simple-tenant-usage/", headers=env.admin)
    _error(resp, 404, "itemNotFound")
    assert env.c.get("/compute/v2.1/os-simple-tenant-usage", headers=env.admin).status_code == 200

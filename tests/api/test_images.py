"""Image service (Glance v2) in process, on every database backend."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from kumo.config import ImagesConfig

from apihelpers import make_client

V2 = "/image/v2"
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def glance_error(resp: Any, status: int) -> str:
    """The response has ``status`` and a Glance (webob) JSON error body; returns the message."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert body["code"].startswith(str(status))
    assert isinstance(body["message"], str) and body["message"]
    return str(body["message"])


def create(client: TestClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"img-{uuid.uuid4().hex[:6]}")
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    resp = client.post(f"{V2}/images", json=body, headers=headers)
    assert resp.status_code == 201, resp.text
    result: dict[str, Any] = resp.json()
    return result


def upload(client: TestClient, headers: dict[str, str], image_id: str, data: bytes) -> Any:
    return client.put(
        f"{V2}/images/{image_id}/file",
        content=data,
        headers={**headers, "Content-Type": "application/octet-stream"},
    )


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_versions_answer_300_without_a_token(client: TestClient) -> None:
    for path in ("/image", "/image/", "/image/v2", "/image/v2/"):
        resp = client.get(path)
        assert resp.status_code == 300, path
        versions = resp.json()["versions"]
        current = [v for v in versions if v["status"] == "CURRENT"]
        assert len(current) == 1 and current[0]["id"].startswith("v2.")
        assert all({"id", "links", "status"} <= set(v) for v in versions)


def test_schemas(client: TestClient, admin_headers: dict[str, str]) -> None:
    for name in ("image", "images", "member", "members"):
        resp = client.get(f"{V2}/schemas/{name}", headers=admin_headers)
        assert resp.status_code == 200
        assert resp.json()["name"] == name
    assert client.get(f"{V2}/schemas/image").status_code == 401


def test_create_upload_download_round_trip(client: TestClient, cloud: Any) -> None:
    h = cloud.admin
    image = create(client, h, visibility="private", ramdisk_id=str(uuid.uuid4()), os_distro="x")
    assert image["status"] == "queued"
    assert image["visibility"] == "private"
    assert image["size"] is None and image["checksum"] is None
    assert image["os_distro"] == "x"
    assert image["self"] == f"/v2/images/{image['id']}"
    empty = client.get(f"{V2}/images/{image['id']}/file", headers=h)
    assert empty.status_code == 204 and empty.content == b""

    data = bytes(range(256)) * 4096 + b"tail"
    resp = upload(client, h, image["id"], data)
    assert resp.status_code == 204, resp.text
    shown = client.get(f"{V2}/images/{image['id']}", headers=h).json()
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["virtual_size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_algo"] == "sha512"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    stored = cloud.config.state_dir / "images" / image["id"]
    assert stored.read_bytes() == data

    got = client.get(f"{V2}/images/{image['id']}/file", headers=h)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Content-MD5"] == shown["checksum"]

    again = upload(client, h, image["id"], b"more")
    glance_error(again, 409)

    assert client.delete(f"{V2}/images/{image['id']}", headers=h).status_code == 204
    assert not stored.exists()
    glance_error(client.get(f"{V2}/images/{image['id']}", headers=h), 404)
    glance_error(client.delete(f"{V2}/images/{image['id']}", headers=h), 404)


def test_real_qcow2_gets_its_virtual_size(client: TestClient, cloud: Any, tmp_path: Path) -> None:
    disk = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", str(disk), "64M")
    image = create(client, cloud.admin, disk_format="qcow2")
    assert upload(client, cloud.admin, image["id"], disk.read_bytes()).status_code == 204
    shown = client.get(f"{V2}/images/{image['id']}", headers=cloud.admin).json()
    assert shown["status"] == "active"
    assert shown["virtual_size"] == 64 * 1024 * 1024
    assert shown["size"] == disk.stat().st_size


def test_unsafe_and_mismatched_data_is_refused(
    client: TestClient, cloud: Any, tmp_path: Path
) -> None:
    h = cloud.admin
    base = tmp_path / "base.qcow2"
    evil = tmp_path / "evil.qcow2"
    qemu_img("create", "-f", "qcow2", str(base), "16M")
    qemu_img("create", "-f", "qcow2", "-b", str(base), "-F", "qcow2", str(evil))
    image = create(client, h, disk_format="qcow2")
    assert "backing file" in glance_error(upload(client, h, image["id"], evil.read_bytes()), 400)

    datafile = tmp_path / "external.qcow2"
    qemu_img(
        "create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'ext.raw'}", str(datafile), "16M"
    )
    assert "data file" in glance_error(upload(client, h, image["id"], datafile.read_bytes()), 400)

    # A qcow2 that claims to be raw, and raw bytes that claim to be qcow2.
    raw_image = create(client, h, disk_format="raw")
    assert "does not match" in glance_error(
        upload(client, h, raw_image["id"], base.read_bytes()), 400
    )
    assert "does not match" in glance_error(upload(client, h, image["id"], b"\0" * 4096), 400)

    for ident in (image["id"], raw_image["id"]):
        shown = client.get(f"{V2}/images/{ident}", headers=h).json()
        assert shown["status"] == "queued"
        assert shown["size"] is None and shown["checksum"] is None
    assert sorted(p.name for p in (cloud.config.state_dir / "images").iterdir()) == []
    # The image can still receive good data afterwards.
    assert upload(client, h, image["id"], base.read_bytes()).status_code == 204


def test_size_limit_is_413_and_nothing_is_kept(cloud: Any) -> None:
    config = cloud.config.model_copy(update={"images": ImagesConfig(max_size_bytes=1000)})
    with make_client(config, cloud.db) as small:
        image = create(small, cloud.admin)
        glance_error(upload(small, cloud.admin, image["id"], b"x" * 1001), 413)

        # Without a Content-Length the limit is enforced while streaming.
        def chunks() -> Any:
            for _ in range(10):
                yield b"y" * 200

        resp = small.put(
            f"{V2}/images/{image['id']}/file",
            content=chunks(),
            headers={**cloud.admin, "Content-Type": "application/octet-stream"},
        )
        glance_error(resp, 413)
        shown = small.get(f"{V2}/images/{image['id']}", headers=cloud.admin).json()
        assert shown["status"] == "queued"
        assert list((cloud.config.state_dir / "images").iterdir()) == []
        assert upload(small, cloud.admin, image["id"], b"z" * 1000).status_code == 204


def test_json_patch(client: TestClient, cloud: Any) -> None:
    h = {**cloud.admin, **PATCH}
    image = create(client, cloud.admin, tags=["a"], hw_disk_bus="virtio")
    url = f"{V2}/images/{image['id']}"
    ops = [
        {"op": "replace", "path": "/name", "value": "renamed"},
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "add", "path": "/os_type", "value": "linux"},
        {"op": "remove", "path": "/hw_disk_bus"},
        {"op": "replace", "path": "/tags", "value": ["b", "c", "b"]},
        {"op": "replace", "path": "/protected", "value": True},
    ]
    resp = client.patch(url, json=ops, headers=h)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["name"] == "renamed" and body["min_ram"] == 512
    assert body["os_type"] == "linux" and "hw_disk_bus" not in body
    assert sorted(body["tags"]) == ["b", "c"]
    assert body["protected"] is True

    # tempest speaks the v2.0 dialect
    old = {**cloud.admin, "Content-Type": "application/openstack-images-v2.0-json-patch"}
    resp = client.patch(url, json=[{"replace": "/os_hidden", "value": True}], headers=old)
    assert resp.status_code == 200 and resp.json()["os_hidden"] is True

    for path in ("/status", "/checksum", "/size", "/id", "/created_at"):
        glance_error(
            client.patch(url, json=[{"op": "replace", "path": path, "value": 1}], headers=h), 403
        )
    glance_error(client.patch(url, json=[{"op": "remove", "path": "/name"}], headers=h), 403)
    glance_error(client.patch(url, json=[{"op": "remove", "path": "/absent"}], headers=h), 409)
    glance_error(
        client.patch(url, json=[{"op": "add", "path": "/os_type", "value": "x"}], headers=h), 409
    )
    glance_error(client.patch(url, json=[{"op": "add", "path": "/n", "value": 5}], headers=h), 400)
    glance_error(
        client.patch(
            url, json=[{"op": "replace", "path": "/visibility", "value": "nope"}], headers=h
        ),
        400,
    )
    glance_error(client.patch(url, json=[{"op": "move", "path": "/name"}], headers=h), 400)
    glance_error(client.patch(url, json={"op": "x"}, headers=h), 400)
    glance_error(client.patch(url, content=b"[{", headers=h), 400)
    glance_error(client.patch(url, json=[], headers=cloud.admin), 415)

    # protected: no delete until unprotected
    glance_error(client.delete(url, headers=cloud.admin), 403)
    client.patch(url, json=[{"op": "replace", "path": "/protected", "value": False}], headers=h)
    assert client.delete(url, headers=cloud.admin).status_code == 204


def test_create_validation(client: TestClient, cloud: Any) -> None:
    h = cloud.admin
    url = f"{V2}/images"
    glance_error(client.post(url, json={"disk_format": "floppy"}, headers=h), 400)
    glance_error(client.post(url, json={"visibility": "everyone"}, headers=h), 400)
    glance_error(client.post(url, json={"min_ram": -1}, headers=h), 400)
    glance_error(client.post(url, json={"status": "active"}, headers=h), 403)
    glance_error(client.post(url, json={"custom": 5}, headers=h), 400)
    glance_error(client.post(url, json={"id": "not-a-uuid"}, headers=h), 400)
    glance_error(client.post(url, content=b"{nope", headers=h), 400)
    glance_error(client.post(url, json=[1], headers=h), 400)
    ident = str(uuid.uuid4())
    assert client.post(url, json={"id": ident}, headers=h).status_code == 201
    glance_error(client.post(url, json={"id": ident}, headers=h), 409)
    glance_error(client.post(url, json={}), 401)
    # name lookup: GET by a name is 404, not 400
    glance_error(client.get(f"{url}/cirros", headers=h), 404)
    glance_error(client.get(f"{url}/", headers=h), 404)
    glance_error(client.delete(f"{url}/", headers=h), 404)
    glance_error(client.get(f"{url}/{uuid.uuid4()}", headers=h), 404)
    glance_error(client.put(f"{url}/{uuid.uuid4()}/file", content=b"x", headers=h), 404)
    glance_error(client.get(f"{url}/{uuid.uuid4()}/file", headers=h), 404)


def test_visibility_and_members_across_projects(client: TestClient, cloud: Any) -> None:
    a = cloud.project("proj-a")
    b = cloud.project("proj-b")
    _, ta = cloud.member("alice", a["id"])
    _, tb = cloud.member("bob", b["id"])
    ha, hb = cloud.h(ta), cloud.h(tb)

    private = create(client, ha, visibility="private")
    shared = create(client, ha, visibility="shared")
    community = create(client, ha, visibility="community")
    hidden = create(client, ha, visibility="private", os_hidden=True)
    assert private["owner"] == a["id"]
    # Only an admin may publish.
    glance_error(client.post(f"{V2}/images", json={"visibility": "public"}, headers=ha), 403)
    public = create(client, cloud.admin, visibility="public")

    def listed(h: dict[str, str], **params: str) -> set[str]:
        resp = client.get(f"{V2}/images", params=params, headers=h)
        assert resp.status_code == 200, resp.text
        return {i["id"] for i in resp.json()["images"]}

    assert listed(ha) >= {private["id"], shared["id"], community["id"], public["id"]}
    assert hidden["id"] not in listed(ha)
    assert hidden["id"] in listed(ha, os_hidden="true")
    seen_by_b = listed(hb)
    assert public["id"] in seen_by_b
    assert not seen_by_b & {private["id"], shared["id"], community["id"]}
    assert community["id"] in listed(hb, visibility="community")
    glance_error(client.get(f"{V2}/images/{private['id']}", headers=hb), 404)
    glance_error(client.get(f"{V2}/images/{shared['id']}", headers=hb), 404)
    assert client.get(f"{V2}/images/{community['id']}", headers=hb).status_code == 200
    glance_error(client.delete(f"{V2}/images/{private['id']}", headers=hb), 404)
    glance_error(client.delete(f"{V2}/images/{public['id']}", headers=hb), 403)
    glance_error(
        client.patch(f"{V2}/images/{community['id']}", json=[], headers={**hb, **PATCH}), 403
    )

    members = f"{V2}/images/{shared['id']}/members"
    glance_error(
        client.post(f"{V2}/images/{private['id']}/members", json={"member": b["id"]}, headers=ha),
        403,
    )
    glance_error(client.post(members, json={"member": b["id"]}, headers=hb), 404)
    added = client.post(members, json={"member": b["id"]}, headers=ha)
    assert added.status_code == 200, added.text
    assert added.json()["status"] == "pending" and added.json()["member_id"] == b["id"]
    glance_error(client.post(members, json={"member": b["id"]}, headers=ha), 409)

    # Pending: visible by id and when asked for, not in the default list.
    assert client.get(f"{V2}/images/{shared['id']}", headers=hb).status_code == 200
    assert shared["id"] not in listed(hb)
    assert shared["id"] in listed(hb, member_status="pending")
    assert shared["id"] in listed(hb, visibility="shared", member_status="all")

    # Only the member decides.
    glance_error(client.put(f"{members}/{b['id']}", json={"status": "accepted"}, headers=ha), 403)
    glance_error(client.put(f"{members}/{b['id']}", json={"status": "maybe"}, headers=hb), 400)
    ok = client.put(f"{members}/{b['id']}", json={"status": "accepted"}, headers=hb)
    assert ok.status_code == 200 and ok.json()["status"] == "accepted"
    assert shared["id"] in listed(hb)
    assert [m["member_id"] for m in client.get(members, headers=hb).json()["members"]] == [b["id"]]
    assert client.get(f"{members}/{b['id']}", headers=hb).json()["status"] == "accepted"
    # A member may download but not change the image.
    assert client.get(f"{V2}/images/{shared['id']}/file", headers=hb).status_code == 204
    glance_error(client.delete(f"{V2}/images/{shared['id']}", headers=hb), 403)

    assert client.delete(f"{members}/{b['id']}", headers=ha).status_code == 204
    glance_error(client.get(f"{V2}/images/{shared['id']}", headers=hb), 404)

    # The admin sees everything.
    assert listed(cloud.admin) >= {private["id"], shared["id"], community["id"]}


def test_list_filters_sort_and_pagination(client: TestClient, cloud: Any) -> None:
    h = cloud.admin
    made = []
    for i, size in enumerate((1500, 500, 2500)):
        image = create(
            client,
            h,
            name=f"flt-{i}",
            tags=[f"t{i}", "common"],
            container_format="ovf" if i == 2 else "bare",
        )
        assert upload(client, h, image["id"], b"q" * size).status_code == 204
        made.append(image["id"])
    queued = create(client, h, name="flt-queued")

    def ids(**params: Any) -> list[str]:
        resp = client.get(f"{V2}/images", params=params, headers=h)
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()["images"]]

    assert ids(name="flt-1") == [made[1]]
    assert ids(tag="common") == list(reversed(made))
    assert ids(tag="t0") == [made[0]]
    assert set(ids(status="active")) == set(made)
    assert ids(status="queued") == [queued["id"]]
    assert ids(container_format="ovf") == [made[2]]
    assert set(ids(size_min=1000, size_max=3000)) == {made[0], made[2]}
    assert ids(size=500) == [made[1]]
    assert ids(id=f"in:{made[0]},{made[1]}", sort="name:asc") == made[:2]
    assert ids(tag="common", sort_key="size", sort_dir="asc") == [made[1], made[0], made[2]]
    assert ids(tag="common", sort="size:desc") == [made[2], made[0], made[1]]

    first = client.get(f"{V2}/images", params={"limit": 2, "tag": "common"}, headers=h).json()
    assert len(first["images"]) == 2 and first["next"].startswith("/v2/images?")
    marker = first["images"][-1]["id"]
    rest = ids(limit=2, tag="common", marker=marker)
    assert rest == [made[0]]
    for bad in (
        {"limit": "x"},
        {"limit": -1},
        {"sort_key": "nope"},
        {"sort_dir": "up"},
        {"visibility": "x"},
        {"member_status": "x"},
        {"marker": str(uuid.uuid4())},
        {"size_min": "big"},
        {"status": "x"},
    ):
        glance_error(client.get(f"{V2}/images", params=bad, headers=h), 400)


def test_deactivate_reactivate_and_tags(client: TestClient, cloud: Any) -> None:
    project = cloud.project("proj-d")
    _, token = cloud.member("dora", project["id"])
    h = cloud.h(token)
    image = create(client, h, visibility="private")
    url = f"{V2}/images/{image['id']}"
    glance_error(client.post(f"{url}/actions/deactivate", headers=h), 400)
    assert upload(client, h, image["id"], b"data" * 300).status_code == 204
    assert client.post(f"{url}/actions/deactivate", headers=h).status_code == 204
    assert client.get(url, headers=h).json()["status"] == "deactivated"
    glance_error(client.get(f"{url}/file", headers=h), 403)
    assert client.get(f"{url}/file", headers=cloud.admin).status_code == 200
    assert client.post(f"{url}/actions/reactivate", headers=h).status_code == 204
    assert client.get(f"{url}/file", headers=h).content == b"data" * 300

    assert client.put(f"{url}/tags/red", headers=h).status_code == 204
    assert client.put(f"{url}/tags/red", headers=h).status_code == 204
    assert client.get(url, headers=h).json()["tags"] == ["red"]
    assert client.delete(f"{url}/tags/red", headers=h).status_code == 204
    glance_error(client.delete(f"{url}/tags/red", headers=h), 404)


@pytest.mark.parametrize("role", ["reader"])
def test_reader_cannot_create(client: TestClient, cloud: Any, role: str) -> None:
    project = cloud.project("proj-r")
    _, token = cloud.member("rita", project["id"], role=role)
    glance_error(client.post(f"{V2}/images", json={}, headers=cloud.h(token)), 403)
    assert client.get(f"{V2}/images", headers=cloud.h(token)).status_code == 200

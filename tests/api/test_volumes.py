"""Block storage API (Cinder v3) in process, on every database backend: volumes, types,
quotas, limits, the legacy attach actions and project isolation. The agent's side (the
backends make and remove the data) is driven by tests/api/test_volume_agent.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kumo.db import models as m

V3 = "/volume/v3"


def register_storage_host(cloud: Any, name: str = "store-1", total_gb: int = 100) -> str:
    """A host whose agent offers the file and fake backends (no agent loop runs here)."""
    from kumo.core import hosts

    with cloud.db.session() as session:
        credential = hosts.ensure_host_credential(session)
    host_id = str(uuid.uuid4())
    body = {
        "host": {
            "id": host_id,
            "name": name,
            "agent_api_versions": ["v1"],
            "capabilities": {
                "volume_backends": {
                    "file": {"total_gb": total_gb},
                    "fake": {"total_gb": total_gb},
                }
            },
            "inventory": {"vcpus": 4, "memory_mb": 4096, "disk_gb": 100},
        }
    }
    resp = cloud.client.post(
        "/agent/v1/hosts", json=body, headers={"X-Kumo-Host-Credential": credential}
    )
    assert resp.status_code == 200, resp.text
    resp = cloud.client.post(
        f"/agent/v1/hosts/{host_id}/heartbeat", headers={"X-Kumo-Host-Credential": credential}
    )
    assert resp.status_code in (200, 204), resp.text
    return host_id


@pytest.fixture
def store(cloud: Any) -> str:
    return register_storage_host(cloud)


def _url(cloud: Any, headers: dict[str, str], path: str) -> str:
    """Cinder's URLs carry the project id (Cinder before 3.67 needs it)."""
    resp = cloud.client.get(
        "/identity/v3/auth/tokens", headers={**headers, "X-Subject-Token": headers["X-Auth-Token"]}
    )
    project = resp.json()["token"]["project"]["id"]
    return f"{V3}/{project}{path}"


def _create(cloud: Any, headers: dict[str, str], **volume: Any) -> Any:
    body = {"volume": {"size": 1, **volume}}
    return cloud.client.post(_url(cloud, headers, "/volumes"), json=body, headers=headers)


def test_versions_document(cloud: Any) -> None:
    resp = cloud.client.get("/volume/")
    assert resp.status_code == 300
    (v3,) = resp.json()["versions"]
    assert (v3["id"], v3["status"], v3["min_version"]) == ("v3.0", "CURRENT", "3.0")
    assert v3["version"] and v3["media-types"]
    resp = cloud.client.get("/volume/v3/")
    assert resp.status_code == 200 and resp.json()["versions"][0]["id"] == "v3.0"


def test_create_show_update_list_delete(cloud: Any, store: str) -> None:
    admin = cloud.admin
    resp = _create(cloud, admin, name="vol1", description="d", metadata={"Type": "Test"})
    assert resp.status_code == 202, resp.text
    volume = resp.json()["volume"]
    assert (volume["status"], volume["size"], volume["name"]) == ("creating", 1, "vol1")
    assert volume["bootable"] == "false" and volume["attachments"] == []
    assert volume["volume_type"] == "__DEFAULT__"
    assert resp.headers["OpenStack-API-Version"] == "volume 3.0"
    vid = volume["id"]
    shown = cloud.client.get(_url(cloud, admin, f"/volumes/{vid}"), headers=admin).json()["volume"]
    assert shown["metadata"] == {"Type": "Test"}
    assert shown["os-vol-host-attr:host"] == "store-1@file#file"
    # Without the project id in the URL too (Cinder 3.67's routes).
    assert cloud.client.get(f"{V3}/volumes/{vid}", headers=admin).status_code == 200

    resp = cloud.client.put(
        _url(cloud, admin, f"/volumes/{vid}"), json={"volume": {"name": "renamed"}}, headers=admin
    )
    assert resp.status_code == 200 and resp.json()["volume"]["name"] == "renamed"
    listed = cloud.client.get(_url(cloud, admin, "/volumes"), headers=admin).json()
    assert [v["id"] for v in listed["volumes"]] == [vid]
    assert set(listed["volumes"][0]) == {"id", "name", "links"}
    detail = cloud.client.get(
        _url(cloud, admin, "/volumes/detail?name=renamed&status=creating"), headers=admin
    ).json()
    assert [v["id"] for v in detail["volumes"]] == [vid]
    none = cloud.client.get(_url(cloud, admin, "/volumes/detail?status=available"), headers=admin)
    assert none.json()["volumes"] == []
    meta = cloud.client.get(
        _url(cloud, admin, "/volumes/detail?metadata={'Type': 'Test'}"), headers=admin
    )
    assert [v["id"] for v in meta.json()["volumes"]] == [vid]

    # Still creating: not deletable until its agent has made it.
    resp = cloud.client.delete(_url(cloud, admin, f"/volumes/{vid}"), headers=admin)
    assert resp.status_code == 400 and "badRequest" in resp.json()
    with cloud.db.session() as session:
        session.get(m.Volume, vid).status = "available"
    resp = cloud.client.delete(_url(cloud, admin, f"/volumes/{vid}"), headers=admin)
    assert resp.status_code == 202
    shown = cloud.client.get(_url(cloud, admin, f"/volumes/{vid}"), headers=admin).json()
    assert shown["volume"]["status"] == "deleting"


def test_pagination_and_sort(cloud: Any, store: str) -> None:
    admin = cloud.admin
    ids = [_create(cloud, admin, name=f"p{i}").json()["volume"]["id"] for i in range(5)]
    first = cloud.client.get(
        _url(cloud, admin, "/volumes/detail?limit=2&sort=name:asc"), headers=admin
    ).json()
    assert [v["name"] for v in first["volumes"]] == ["p0", "p1"]
    assert first["volumes_links"][0]["rel"] == "next"
    marker = first["volumes"][-1]["id"]
    second = cloud.client.get(
        _url(cloud, admin, f"/volumes/detail?limit=2&sort=name:asc&marker={marker}"),
        headers=admin,
    ).json()
    assert [v["name"] for v in second["volumes"]] == ["p2", "p3"]
    assert len(ids) == 5
    bad = cloud.client.get(_url(cloud, admin, "/volumes?sort=nope:asc"), headers=admin)
    assert bad.status_code == 400
    bad = cloud.client.get(_url(cloud, admin, f"/volumes?marker={uuid.uuid4()}"), headers=admin)
    assert bad.status_code == 400


def test_bad_input_is_a_clear_400(cloud: Any, store: str) -> None:
    admin = cloud.admin
    url = _url(cloud, admin, "/volumes")
    for body in (
        {"volume": {"size": 0}},
        {"volume": {"size": "big"}},
        {"volume": {}},
        {"volume": {"size": 1, "bogus": 1}},
        {"volume": {"size": 1, "name": "x" * 256}},
        {"volume": {"size": 1, "metadata": ["a"]}},
        {"volume": {"size": 1, "imageRef": str(uuid.uuid4())}},
        {"volume": "nope"},
        {},
    ):
        resp = cloud.client.post(url, json=body, headers=admin)
        assert resp.status_code == 400, (body, resp.text)
        assert "badRequest" in resp.json()
    resp = cloud.client.post(url, content=b"{not json", headers=admin)
    assert resp.status_code == 400
    resp = cloud.client.post(
        url, json={"volume": {"size": 1, "volume_type": "nope"}}, headers=admin
    )
    assert resp.status_code == 404 and "itemNotFound" in resp.json()
    resp = cloud.client.get(_url(cloud, admin, f"/volumes/{uuid.uuid4()}"), headers=admin)
    assert resp.status_code == 404
    resp = cloud.client.get(
        f"{V3}/volumes", headers={**admin, "OpenStack-API-Version": "volume 9.9"}
    )
    assert resp.status_code == 406
    with cloud.db.session() as session:
        assert session.query(m.Volume).count() == 0  # nothing half-written


def test_an_empty_id_is_a_404_not_a_redirect(cloud: Any, store: str) -> None:
    """Cinder matches routes exactly: ``.../volumes/`` (a volume named by an empty id, as
    tempest's ..._without_passing_volume_id and ..._with_empty_volume_id tests send it) is
    a 404 for every method, not the list (GET) nor a 405 (PUT, DELETE)."""
    admin = cloud.admin
    volume_id = _create(cloud, admin).json()["volume"]["id"]
    for path in (_url(cloud, admin, "/volumes/"), f"{V3}/volumes/", f"{V3}/snapshots/",
                 _url(cloud, admin, f"/volumes/{volume_id}/metadata/")):  # fmt: skip
        for method in ("GET", "PUT", "DELETE", "POST"):
            resp = cloud.client.request(
                method, path, json={"volume": {"name": "n"}}, headers=admin, follow_redirects=False
            )
            assert resp.status_code == 404, (method, path, resp.status_code, resp.text)
            assert resp.json()["itemNotFound"]["message"] == "The resource could not be found."
    shown = cloud.client.get(_url(cloud, admin, f"/volumes/{volume_id}"), headers=admin)
    assert shown.json()["volume"]["id"] == volume_id
    listed = cloud.client.get(_url(cloud, admin, "/volumes"), headers=admin)
    assert [v["id"] for v in listed.json()["volumes"]] == [volume_id]
    assert cloud.client.get(f"{V3}/", follow_redirects=False).status_code == 200


def test_no_backend_with_room_is_an_error_volume(cloud: Any) -> None:
    register_storage_host(cloud, "tiny", total_gb=0)
    resp = _create(cloud, cloud.admin)
    assert resp.status_code == 202
    vid = resp.json()["volume"]["id"]
    shown = cloud.client.get(_url(cloud, cloud.admin, f"/volumes/{vid}"), headers=cloud.admin)
    assert shown.json()["volume"]["status"] == "error"
    # An error volume no host holds is deleted at once.
    assert cloud.client.delete(f"{V3}/volumes/{vid}", headers=cloud.admin).status_code == 202
    assert cloud.client.get(f"{V3}/volumes/{vid}", headers=cloud.admin).status_code == 404


def test_quota_exceeded_is_413_with_cinders_message(cloud: Any, store: str) -> None:
    project = cloud.project("vq")
    _, token = cloud.member("vq-u", project["id"])
    headers = cloud.h(token)
    resp = cloud.client.put(
        f"{V3}/os-quota-sets/{project['id']}",
        json={"quota_set": {"volumes": 1, "gigabytes": 3}},
        headers=cloud.admin,
    )
    assert resp.status_code == 200, resp.text
    resp = _create(cloud, headers, size=4)
    assert resp.status_code == 413
    assert "VolumeSizeExceedsAvailableQuota" in resp.json()["overLimit"]["message"]
    assert _create(cloud, headers, size=1).status_code == 202
    resp = _create(cloud, headers, size=1)
    assert resp.status_code == 413
    assert "VolumeLimitExceeded" in resp.json()["overLimit"]["message"]
    limits = cloud.client.get(f"{V3}/limits", headers=headers).json()["limits"]["absolute"]
    assert (limits["maxTotalVolumes"], limits["totalVolumesUsed"]) == (1, 1)
    assert limits["totalGigabytesUsed"] == 1
    usage = cloud.client.get(
        f"{V3}/os-quota-sets/{project['id']}?usage=true", headers=headers
    ).json()["quota_set"]
    assert usage["volumes"] == {"limit": 1, "in_use": 1, "reserved": 0}
    # Members cannot raise their own quota.
    resp = cloud.client.put(
        f"{V3}/os-quota-sets/{project['id']}", json={"quota_set": {"volumes": 9}}, headers=headers
    )
    assert resp.status_code == 403


def test_other_projects_volumes_are_invisible(cloud: Any, store: str) -> None:
    a = cloud.project("va")
    b = cloud.project("vb")
    _, token_a = cloud.member("va-u", a["id"])
    _, token_b = cloud.member("vb-u", b["id"])
    ha, hb = cloud.h(token_a), cloud.h(token_b)
    vid = _create(cloud, ha, name="mine").json()["volume"]["id"]
    for method, path in (
        ("GET", f"/volumes/{vid}"),
        ("PUT", f"/volumes/{vid}"),
        ("DELETE", f"/volumes/{vid}"),
        ("POST", f"/volumes/{vid}/action"),
    ):
        body = {"volume": {"name": "x"}} if method == "PUT" else {"os-reserve": None}
        resp = cloud.client.request(
            method, f"{V3}{path}", headers=hb, json=body if method in ("PUT", "POST") else None
        )
        assert resp.status_code == 404, (method, path, resp.text)
    assert cloud.client.get(f"{V3}/volumes/detail", headers=hb).json()["volumes"] == []
    everyone = cloud.client.get(f"{V3}/volumes/detail?all_tenants=1", headers=cloud.admin)
    assert vid in [v["id"] for v in everyone.json()["volumes"]]
    # A project id in the URL that is not the token's is refused.
    resp = cloud.client.get(f"{V3}/{a['id']}/volumes", headers=hb)
    assert resp.status_code == 400


def test_small_actions(cloud: Any, store: str) -> None:
    admin = cloud.admin
    vid = _create(cloud, admin).json()["volume"]["id"]
    with cloud.db.session() as session:
        session.get(m.Volume, vid).status = "available"
    act = _url(cloud, admin, f"/volumes/{vid}/action")

    def show() -> dict[str, Any]:
        body: dict[str, Any] = cloud.client.get(f"{V3}/volumes/{vid}", headers=admin).json()
        return body["volume"]

    for flag in (True, False):
        resp = cloud.client.post(act, json={"os-set_bootable": {"bootable": flag}}, headers=admin)
        assert resp.status_code == 200
        assert show()["bootable"] == str(flag).lower()
        resp = cloud.client.post(
            act, json={"os-update_readonly_flag": {"readonly": flag}}, headers=admin
        )
        assert resp.status_code == 202
        assert show()["metadata"]["readonly"] == str(flag)
    assert cloud.client.post(act, json={"os-reserve": None}, headers=admin).status_code == 202
    assert show()["status"] == "attaching"
    assert cloud.client.post(act, json={"os-unreserve": None}, headers=admin).status_code == 202
    assert show()["status"] == "available"
    server_id = str(uuid.uuid4())
    resp = cloud.client.post(
        act,
        json={"os-attach": {"instance_uuid": server_id, "mountpoint": "/dev/vdb"}},
        headers=admin,
    )
    assert resp.status_code == 202, resp.text
    shown = show()
    assert shown["status"] == "in-use"
    (attachment,) = shown["attachments"]
    assert (attachment["server_id"], attachment["device"]) == (server_id, "/dev/vdb")
    assert attachment["id"] == attachment["volume_id"] == vid
    # In use: not deletable, not attachable again (not multiattach).
    assert cloud.client.delete(f"{V3}/volumes/{vid}", headers=admin).status_code == 400
    resp = cloud.client.post(
        act,
        json={"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": "/dev/vdc"}},
        headers=admin,
    )
    assert resp.status_code == 400
    assert (
        cloud.client.post(act, json={"os-begin_detaching": None}, headers=admin).status_code == 202
    )
    assert show()["status"] == "detaching"
    assert (
        cloud.client.post(act, json={"os-roll_detaching": None}, headers=admin).status_code == 202
    )
    assert show()["status"] == "in-use"
    assert cloud.client.post(act, json={"os-detach": {}}, headers=admin).status_code == 202
    assert (show()["status"], show()["attachments"]) == ("available", [])
    resp = cloud.client.post(act, json={"os-extend": {"new_size": 1}}, headers=admin)
    assert resp.status_code == 400
    resp = cloud.client.post(act, json={"os-extend": {"new_size": 3}}, headers=admin)
    assert resp.status_code == 202
    assert (show()["status"], show()["size"]) == ("extending", 3)
    assert cloud.client.post(act, json={"os-nope": {}}, headers=admin).status_code == 400


def test_volume_types_and_backend_choice(cloud: Any, store: str) -> None:
    admin = cloud.admin
    resp = cloud.client.post(
        f"{V3}/types",
        json={"volume_type": {"name": "fast", "extra_specs": {"volume_backend_name": "fake"}}},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    vtype = resp.json()["volume_type"]
    assert vtype["extra_specs"] == {"volume_backend_name": "fake"}
    resp = cloud.client.post(f"{V3}/types", json={"volume_type": {"name": "fast"}}, headers=admin)
    assert resp.status_code == 409
    names = [
        t["name"] for t in cloud.client.get(f"{V3}/types", headers=admin).json()["volume_types"]
    ]
    assert "__DEFAULT__" in names and "fast" in names
    vol = _create(cloud, admin, volume_type="fast").json()["volume"]
    assert vol["volume_type"] == "fast"
    assert (
        cloud.client.get(f"{V3}/volumes/{vol['id']}", headers=admin).json()["volume"][
            "os-vol-host-attr:host"
        ]
        == "store-1@fake#fake"
    )
    # In use by a volume: not deletable.
    assert cloud.client.delete(f"{V3}/types/{vtype['id']}", headers=admin).status_code == 400
    project = cloud.project("vt")
    _, token = cloud.member("vt-u", project["id"])
    member = cloud.h(token)
    resp = cloud.client.post(f"{V3}/types", json={"volume_type": {"name": "mine"}}, headers=member)
    assert resp.status_code == 403
    shown = cloud.client.get(f"{V3}/types/{vtype['id']}", headers=member).json()["volume_type"]
    assert "extra_specs" not in shown  # backends are the operator's business


def test_stuck_requests_end_with_a_reason(cloud: Any, store: str) -> None:
    import datetime as dt

    from kumo.controller.stuck import resolve_stuck

    admin = cloud.admin
    vid = _create(cloud, admin).json()["volume"]["id"]
    with cloud.db.session() as session:
        volume = session.get(m.Volume, vid)
        volume.task_deadline = volume.task_deadline - dt.timedelta(hours=1)
    assert resolve_stuck(cloud.db) == 1
    shown = cloud.client.get(f"{V3}/volumes/{vid}", headers=admin).json()["volume"]
    assert shown["status"] == "error"
    with cloud.db.session() as session:
        assert "timed out" in (session.get(m.Volume, vid).fault or "")
    # An error volume can be deleted (its host's agent removes whatever it made).
    assert cloud.client.delete(f"{V3}/volumes/{vid}", headers=admin).status_code == 202


def test_db_check_finds_and_repairs_volume_status(cloud: Any, store: str) -> None:
    from kumo.core.checks import run_checks

    vid = _create(cloud, cloud.admin).json()["volume"]["id"]
    with cloud.db.session() as session:
        session.get(m.Volume, vid).status = "in-use"  # no attachment says so
    with cloud.db.session() as session:
        problems = run_checks(session, repair=True)
    assert any(vid in p.detail for p in problems), problems
    with cloud.db.session() as session:
        assert session.get(m.Volume, vid).status == "available"
        assert not [p for p in run_checks(session) if vid in p.detail]


def test_concurrent_attaches_one_wins(cloud: Any, store: str) -> None:
    """Two requests that both read the volume available: the second write is a lost update,
    refused (409 through the API: kumo.api.errors), so one attachment exists."""
    from sqlalchemy.orm.exc import StaleDataError

    from kumo.core.policy import Context
    from kumo.core.volume import attachments

    admin = cloud.admin
    vid = _create(cloud, admin).json()["volume"]["id"]
    with cloud.db.session() as session:
        volume = session.get(m.Volume, vid)
        volume.status = "available"
        project = volume.project_id
    ctx = Context(user_id="u", user_domain_id="default", roles=frozenset({"admin"}),
                  project_id=project)  # fmt: skip
    args = {"mountpoint": "/dev/vdb"}
    second = cloud.db.session()
    s2 = second.__enter__()
    try:
        read = s2.get(m.Volume, vid)  # read (and held) before the first request commits
        assert read.status == "available"
        with cloud.db.session() as s1:
            attachments.legacy_attach(s1, ctx, vid, {**args, "instance_uuid": str(uuid.uuid4())})
        with pytest.raises(StaleDataError):
            attachments.legacy_attach(s2, ctx, vid, {**args, "instance_uuid": str(uuid.uuid4())})
            s2.flush()
        del read
    finally:
        second.__exit__(StaleDataError, StaleDataError(), None)
    with cloud.db.session() as session:
        live = session.query(m.VolumeAttachment).filter_by(volume_id=vid, deleted=False).all()
        assert len(live) == 1
        assert session.get(m.Volume, vid).status == "in-use"


def test_volume_transfer_between_projects(cloud: Any, store: str) -> None:
    a = cloud.project("ta")
    b = cloud.project("tb")
    _, token_a = cloud.member("ta-u", a["id"])
    _, token_b = cloud.member("tb-u", b["id"])
    ha, hb = cloud.h(token_a), cloud.h(token_b)
    vid = _create(cloud, ha, name="gift").json()["volume"]["id"]
    with cloud.db.session() as session:
        session.get(m.Volume, vid).status = "available"
    resp = cloud.client.post(
        f"{V3}/os-volume-transfer", json={"transfer": {"volume_id": vid, "name": "t"}}, headers=ha
    )
    assert resp.status_code == 202, resp.text
    transfer = resp.json()["transfer"]
    assert transfer["auth_key"] and transfer["volume_id"] == vid
    shown = cloud.client.get(f"{V3}/volumes/{vid}", headers=ha).json()["volume"]
    assert shown["status"] == "awaiting-transfer"
    # The receiver cannot see the offer, and a wrong key is refused.
    assert (
        cloud.client.get(f"{V3}/os-volume-transfer/{transfer['id']}", headers=hb).status_code == 404
    )
    accept = f"{V3}/os-volume-transfer/{transfer['id']}/accept"
    resp = cloud.client.post(accept, json={"accept": {"auth_key": "wrong"}}, headers=hb)
    assert resp.status_code == 400
    assert cloud.client.get(f"{V3}/volumes/{vid}", headers=hb).status_code == 404
    resp = cloud.client.post(
        accept, json={"accept": {"auth_key": transfer["auth_key"]}}, headers=hb
    )
    assert resp.status_code == 202, resp.text
    mine = cloud.client.get(f"{V3}/volumes/{vid}", headers=hb).json()["volume"]
    assert (mine["status"], mine["os-vol-tenant-attr:tenant_id"]) == ("available", b["id"])
    assert cloud.client.get(f"{V3}/volumes/{vid}", headers=ha).status_code == 404
    assert cloud.client.get(f"{V3}/os-volume-transfer", headers=ha).json()["transfers"] == []
    # A transfer can be withdrawn: the volume is available again.
    resp = cloud.client.post(
        f"{V3}/os-volume-transfer", json={"transfer": {"volume_id": vid}}, headers=hb
    )
    tid = resp.json()["transfer"]["id"]
    assert cloud.client.delete(f"{V3}/os-volume-transfer/{tid}", headers=hb).status_code == 202
    assert cloud.client.get(f"{V3}/volumes/{vid}", headers=hb).json()["volume"]["status"] == (
        "available"
    )


def test_multiattach_volume_takes_two_attachments(cloud: Any, store: str) -> None:
    admin = cloud.admin
    resp = cloud.client.post(
        f"{V3}/types",
        json={"volume_type": {"name": "shared", "extra_specs": {"multiattach": "<is> True"}}},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    volume = _create(cloud, admin, volume_type="shared").json()["volume"]
    assert volume["multiattach"] is True
    with cloud.db.session() as session:
        session.get(m.Volume, volume["id"]).status = "available"
    act = f"{V3}/volumes/{volume['id']}/action"
    for device in ("/dev/vdb", "/dev/vdc"):
        body = {"os-attach": {"instance_uuid": str(uuid.uuid4()), "mountpoint": device}}
        assert cloud.client.post(act, json=body, headers=admin).status_code == 202
    shown = cloud.client.get(f"{V3}/volumes/{volume['id']}", headers=admin).json()["volume"]
    assert (shown["status"], len(shown["attachments"])) == ("in-use", 2)
    # With two attachments a detach must name one.
    assert cloud.client.post(act, json={"os-detach": {}}, headers=admin).status_code == 400
    first = shown["attachments"][0]["attachment_id"]
    resp = cloud.client.post(act, json={"os-detach": {"attachment_id": first}}, headers=admin)
    assert resp.status_code == 202
    shown = cloud.client.get(f"{V3}/volumes/{volume['id']}", headers=admin).json()["volume"]
    assert (shown["status"], len(shown["attachments"])) == ("in-use", 1)

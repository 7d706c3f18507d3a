"""createImage (snapshot to image) and rescue/unrescue through the compute API, run by an
agent with the fake hypervisor driver, on every database backend."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.db import models as m

pytestmark = [
    pytest.mark.skipif(
        shutil.which("qemu-img") is None, reason="qemu-img is needed to check snapshot data"
    ),
    # The agent's upload sets a long timeout, which starlette's TestClient warns about.
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]
IMAGES = "/image/v2/images"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    c = Compute(cloud, tmp_path)
    c.loop.scratch_dir = tmp_path / "snapshots"
    with c.db.session() as session:
        image = session.get(m.Image, c.image_id)
        image.properties = {
            "kernel_id": str(uuid.UUID(int=1)),
            "ramdisk_id": str(uuid.UUID(int=2)),
            "os_command_line": "console=ttyS0 quiet",
            "os_distro": "kumo-tiny",
        }
        image.min_disk = 1
    return c


def _active_server(compute: Compute, headers: dict[str, str]) -> str:
    resp = compute.create(headers)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, headers)["status"] == "ACTIVE"
    return server_id


def _image(compute: Compute, image_id: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = compute.client.get(f"{IMAGES}/{image_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_create_image_becomes_active_with_owner_and_properties(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("snap-p")
    _, token = cloud.member("snap-u", project["id"])
    headers = cloud.h(token)
    server_id = _active_server(compute, headers)
    resp = compute.action(
        server_id, headers, {"createImage": {"name": "snap1", "metadata": {"purpose": "test"}}}
    )
    assert resp.status_code == 202, resp.text
    assert resp.content == b""
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    assert resp.headers["Location"].endswith(f"/image/v2/images/{image_id}")

    image = _image(compute, image_id, headers)
    assert (image["status"], image["owner"], image["name"]) == ("queued", project["id"], "snap1")
    shown = compute.show(server_id, headers)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", "image_snapshot")
    # A second snapshot waits for the first one.
    again = compute.action(server_id, headers, {"createImage": {"name": "snap2"}})
    assert again.status_code == 409

    compute.converge()
    image = _image(compute, image_id, headers)
    assert image["status"] == "active"
    assert image["disk_format"] == "qcow2" and image["container_format"] == "bare"
    assert image["visibility"] == "private"
    assert image["size"] > 0 and image["checksum"] and image["os_hash_value"]
    assert image["virtual_size"] == 1 << 20
    assert image["instance_uuid"] == server_id
    assert image["image_type"] == "snapshot"
    assert image["base_image_ref"] == compute.image_id
    assert image["kernel_id"] == str(uuid.UUID(int=1))
    assert image["ramdisk_id"] == str(uuid.UUID(int=2))
    assert image["os_command_line"] == "console=ttyS0 quiet"
    assert image["purpose"] == "test"
    assert image["min_disk"] == 1
    shown = compute.show(server_id, headers)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    data = compute.client.get(f"{IMAGES}/{image_id}/file", headers=headers)
    assert data.status_code == 200 and data.content[:4] == b"QFI\xfb"

    # The snapshot boots a new server.
    resp = compute.client.post(
        SERVERS,
        headers=headers,
        json={"server": {"name": "from-snap", "imageRef": image_id, "flavorRef": "1"}},
    )
    assert resp.status_code == 202, resp.text
    compute.converge()
    assert compute.show(resp.json()["server"]["id"], headers)["status"] == "ACTIVE"
    actions = compute.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=headers
    ).json()["instanceActions"]
    assert actions[0]["action"] == "createImage" and actions[0]["message"] is None


def test_create_image_metadata_wins_over_nova_properties(compute: Compute) -> None:
    """Nova layers the user's createImage metadata over image_type, user_id and
    base_image_ref (tempest's test_create_delete_image passes image_type=test and reads it
    back); the snapshot still completes, found by its instance_uuid, which stays the
    server's. createBackup's backup_type is the request's, over the metadata."""
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    meta = {"image_type": "test", "user_id": "someone", "instance_uuid": "elsewhere"}
    resp = compute.action(server_id, admin, {"createImage": {"name": "typed", "metadata": meta}})
    assert resp.status_code == 202, resp.text
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    compute.converge()
    image = _image(compute, image_id, admin)
    assert image["status"] == "active", image
    assert (image["image_type"], image["user_id"]) == ("test", "someone")
    assert image["instance_uuid"] == server_id
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    nova_view = compute.client.get(f"/compute/v2.1/images/{image_id}", headers=admin).json()
    assert nova_view["image"]["metadata"]["image_type"] == "test"
    listed = compute.client.get(
        f"/compute/v2.1/images/detail?server={server_id}", headers=admin
    ).json()["images"]
    assert [i["id"] for i in listed] == [image_id]

    backup = {"name": "b1", "backup_type": "daily", "rotation": 1}
    backup["metadata"] = {"backup_type": "weekly", "image_type": "mine"}
    resp = compute.action(server_id, admin, {"createBackup": backup})
    assert resp.status_code == 202, resp.text
    backup_id = resp.headers["Location"].rsplit("/", 1)[-1]
    compute.converge()
    image = _image(compute, backup_id, admin)
    assert image["status"] == "active", image
    assert (image["backup_type"], image["image_type"]) == ("daily", "mine")


@pytest.mark.parametrize("go", ["os-stop", "pause", "suspend"])
def test_create_image_keeps_the_power_state(compute: Compute, go: str) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    assert compute.action(server_id, admin, {go: None}).status_code == 202
    compute.converge()
    before = compute.show(server_id, admin)["status"]
    resp = compute.action(server_id, admin, {"createImage": {"name": f"snap-{go}"}})
    assert resp.status_code == 202, resp.text
    compute.converge()
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    assert _image(compute, image_id, admin)["status"] == "active"
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == (before, None)


def test_create_image_in_wrong_state_or_bad_body(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    resp = compute.action(server_id, admin, {"createImage": {"name": "early"}})
    assert resp.status_code == 409  # still BUILD
    assert "conflictingRequest" in resp.json()
    compute.converge()
    for body in (
        {},
        {"name": ""},
        {"name": "x", "metadata": "no"},
        {"name": "x", "bad": 1},
        {"name": "x", "metadata": {"status": "active"}},
    ):
        resp = compute.action(server_id, admin, {"createImage": body})
        assert resp.status_code == 400, (body, resp.text)
    assert compute.action(server_id, admin, {"rescue": None}).status_code == 200
    compute.converge()
    resp = compute.action(server_id, admin, {"createImage": {"name": "rescued"}})
    assert resp.status_code == 409
    listed = compute.client.get(IMAGES, headers=admin).json()["images"]
    assert [i["name"] for i in listed] == ["img"]  # no image left by refused requests


def test_other_project_cannot_snapshot(compute: Compute) -> None:
    cloud = compute.cloud
    a, b = cloud.project("snap-a"), cloud.project("snap-b")
    _, token_a = cloud.member("snap-ua", a["id"])
    _, token_b = cloud.member("snap-ub", b["id"])
    server_id = _active_server(compute, cloud.h(token_a))
    resp = compute.action(server_id, cloud.h(token_b), {"createImage": {"name": "steal"}})
    assert resp.status_code == 404
    resp = compute.action(server_id, cloud.h(token_b), {"rescue": {}})
    assert resp.status_code == 404
    # An admin's snapshot of the server belongs to the server's project.
    resp = compute.action(server_id, cloud.admin, {"createImage": {"name": "by-admin"}})
    assert resp.status_code == 202
    compute.converge()
    image = _image(compute, resp.headers["Location"].rsplit("/", 1)[-1], cloud.h(token_a))
    assert (image["owner"], image["status"]) == (a["id"], "active")
    hidden = compute.client.get(f"{IMAGES}/{image['id']}", headers=cloud.h(token_b))
    assert hidden.status_code == 404


def test_failed_snapshot_deletes_the_image_and_keeps_the_server(
    compute: Compute, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kumo.drivers.hypervisor.base import HypervisorError

    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)

    def broken(uuid: str, target: Path) -> None:
        raise HypervisorError("disk on fire")

    monkeypatch.setattr(compute.loop.driver, "snapshot", broken)
    resp = compute.action(server_id, admin, {"createImage": {"name": "doomed"}})
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    compute.converge()
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=admin).status_code == 404
    actions = compute.client.get(
        f"{SERVERS}/{server_id}/os-instance-actions", headers=admin
    ).json()["instanceActions"]
    assert actions[0]["action"] == "createImage"
    assert "disk on fire" in actions[0]["message"]


def test_server_deleted_mid_snapshot_leaves_no_image(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    resp = compute.action(server_id, admin, {"createImage": {"name": "orphan"}})
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    # The agent took the snapshot and is about to upload when the server is deleted.
    item = next(
        i
        for i in compute.agent_client.get(f"/agent/v1/hosts/{compute.host_id}/instances").json()[
            "instances"
        ]
        if i["id"] == server_id
    )
    assert item["snapshot_image_id"] == image_id
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    compute.loop.reconcile(item)  # the stale item: snapshot + upload are refused
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=admin).status_code == 404
    compute.converge()
    assert compute.client.get(f"{SERVERS}/{server_id}", headers=admin).status_code == 404
    with compute.db.session() as session:
        assert session.get(m.Image, image_id).status == "deleted"


def test_agent_upload_only_into_a_waiting_snapshot(compute: Compute) -> None:
    resp = compute.agent_client.put(
        f"/agent/v1/images/{compute.image_id}/file", content=b"QFI\xfb" + b"\0" * 100
    )
    assert resp.status_code == 404
    resp = compute.agent_client.put(f"/agent/v1/images/{uuid.uuid4()}/file", content=b"x")
    assert resp.status_code == 404
    resp = compute.client.put(f"/agent/v1/images/{compute.image_id}/file", content=b"x")
    assert resp.status_code == 401


def test_rescue_and_unrescue(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    assert compute.action(server_id, admin, {"unrescue": None}).status_code == 409
    resp = compute.action(server_id, admin, {"rescue": {"adminPass": "s3cret"}})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"adminPass": "s3cret"}
    assert compute.show(server_id, admin)["OS-EXT-STS:task_state"] == "rescuing"
    assert compute.action(server_id, admin, {"rescue": {}}).status_code == 409
    compute.converge()
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:vm_state"], shown["OS-EXT-STS:power_state"]) == (
        "RESCUE",
        "rescued",
        1,
    )
    driver = compute.loop.driver
    assert driver.is_rescued(server_id)
    for action in (
        {"os-stop": None},
        {"pause": None},
        {"rescue": {}},
        {"resize": {"flavorRef": "2"}},
    ):
        assert compute.action(server_id, admin, action).status_code == 409, action
    compute.converge()  # nothing pending: the rescue stays
    assert compute.show(server_id, admin)["status"] == "RESCUE"

    assert compute.action(server_id, admin, {"unrescue": None}).status_code == 202
    compute.converge()
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert not driver.is_rescued(server_id)
    assert driver.get_state(server_id).power_state == "running"


def test_rescue_a_stopped_server_with_another_image(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    compute.converge()
    resp = compute.action(server_id, admin, {"rescue": {"rescue_image_ref": str(uuid.uuid4())}})
    assert resp.status_code == 400
    resp = compute.action(server_id, admin, {"rescue": {"rescue_image_ref": compute.image_id}})
    assert resp.status_code == 200 and resp.json()["adminPass"]
    item = next(
        i
        for i in compute.agent_client.get(f"/agent/v1/hosts/{compute.host_id}/instances").json()[
            "instances"
        ]
        if i["id"] == server_id
    )
    assert item["rescue_image_id"] == compute.image_id
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "RESCUE"
    assert compute.action(server_id, admin, {"unrescue": {}}).status_code == 202
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"


def test_stuck_snapshot_ends_without_harming_the_server(compute: Compute) -> None:
    import datetime as dt

    from kumo.controller.stuck import resolve_stuck

    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    resp = compute.action(server_id, admin, {"createImage": {"name": "slow"}})
    image_id = resp.headers["Location"].rsplit("/", 1)[-1]
    with compute.db.session() as session:
        instance = session.get(m.Instance, server_id)
        instance.task_deadline = instance.task_deadline - dt.timedelta(hours=1)
    assert resolve_stuck(compute.db) == 1
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=admin).status_code == 404

"""createBackup: a snapshot kept as a backup, with rotation of the server's older backups of
the same type, run by an agent with the fake hypervisor driver."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

pytestmark = [
    pytest.mark.skipif(
        shutil.which("qemu-img") is None, reason="qemu-img is needed to check snapshot data"
    ),
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]
IMAGES = "/compute/v2.1/images"


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    c = Compute(cloud, tmp_path)
    c.loop.scratch_dir = tmp_path / "snapshots"
    return c


def _active_server(compute: Compute, headers: dict[str, str]) -> str:
    resp = compute.create(headers)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    compute.converge()
    return server_id


def _backup(
    compute: Compute, server_id: str, headers: dict[str, str], name: str, rotation: Any, kind: str
) -> Any:
    body = {"createBackup": {"name": name, "backup_type": kind, "rotation": rotation}}
    return compute.action(server_id, headers, body)


def _backups(compute: Compute, server_id: str, headers: dict[str, str], kind: str) -> list[str]:
    resp = compute.client.get(
        f"{IMAGES}/detail", params={"server": server_id, "type": "backup"}, headers=headers
    )
    assert resp.status_code == 200, resp.text
    return [i["name"] for i in resp.json()["images"] if i["metadata"]["backup_type"] == kind]


def test_backup_rotation_keeps_the_newest(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("bk-p")
    headers = cloud.h(cloud.member("bk-u", project["id"])[1])
    server_id = _active_server(compute, headers)
    first = _backup(compute, server_id, headers, "b1", 2, "daily")
    assert first.status_code == 202, first.text
    image_id = first.headers["Location"].rsplit("/", 1)[-1]
    assert first.headers["Location"].endswith(f"/compute/v2.1/images/{image_id}")
    view = compute.client.get(f"{IMAGES}/{image_id}", headers=headers).json()["image"]
    assert view["status"] == "SAVING" and view["server"]["id"] == server_id
    assert view["metadata"]["image_type"] == "backup"
    assert view["metadata"]["backup_type"] == "daily"
    compute.converge()
    assert _backup(compute, server_id, headers, "w1", "1", "weekly").status_code == 202
    compute.converge()
    for name in ("b2", "b3"):
        assert _backup(compute, server_id, headers, name, "2", "daily").status_code == 202
        compute.converge()
    assert _backups(compute, server_id, headers, "daily") == ["b3", "b2"]
    assert _backups(compute, server_id, headers, "weekly") == ["w1"]
    gone = compute.client.get(f"{IMAGES}/{image_id}", headers=headers)
    assert gone.status_code == 404
    actions = compute.client.get(
        f"/compute/v2.1/servers/{server_id}/os-instance-actions", headers=headers
    ).json()["instanceActions"]
    assert actions[0]["action"] == "createBackup" and actions[0]["message"] is None
    shown = compute.show(server_id, headers)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)


def test_rotation_zero_deletes_every_backup_and_has_no_location(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    assert _backup(compute, server_id, admin, "keep", 3, "daily").status_code == 202
    compute.converge()
    resp = _backup(compute, server_id, admin, "none", 0, "daily")
    assert resp.status_code == 202 and "Location" not in resp.headers
    compute.converge()
    assert _backups(compute, server_id, admin, "daily") == []


@pytest.mark.parametrize(
    "body",
    [
        {"name": "b", "backup_type": "daily"},
        {"name": "b", "rotation": 1},
        {"backup_type": "daily", "rotation": 1},
        {"name": "b", "backup_type": "daily", "rotation": -1},
        {"name": "b", "backup_type": "daily", "rotation": "x"},
        {"name": "b", "backup_type": "daily", "rotation": 1.5},
        {"name": "b", "backup_type": "daily", "rotation": True},
        {"name": "b", "backup_type": 3, "rotation": 1},
        {"name": "b", "backup_type": "daily", "rotation": 1, "extra": 1},
        {"name": "", "backup_type": "daily", "rotation": 1},
        "not-an-object",
    ],
)
def test_bad_bodies_are_400(compute: Compute, body: Any) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    resp = compute.action(server_id, admin, {"createBackup": body})
    assert resp.status_code == 400, resp.text
    assert resp.json()["badRequest"]["code"] == 400
    assert compute.show(server_id, admin)["OS-EXT-STS:task_state"] is None


def test_paused_server_is_409_and_others_server_is_404(compute: Compute) -> None:
    cloud = compute.cloud
    admin = cloud.admin
    server_id = _active_server(compute, admin)
    assert compute.action(server_id, admin, {"pause": None}).status_code == 202
    compute.converge()
    resp = _backup(compute, server_id, admin, "p", 1, "daily")
    assert resp.status_code == 409 and resp.json()["conflictingRequest"]["code"] == 409
    other = cloud.project("bk-other")
    headers = cloud.h(cloud.member("bk-o", other["id"])[1])
    resp = _backup(compute, server_id, headers, "p", 1, "daily")
    assert resp.status_code == 404 and "itemNotFound" in resp.json()

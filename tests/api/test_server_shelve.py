"""shelve / shelveOffload / unshelve through the compute API, run by an agent with the fake
hypervisor driver, on every database backend: the server gives its host back (no host, no
allocation, guest gone) and comes back from its ``<name>-shelved`` snapshot."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.db import models as m
from kumo.drivers.hypervisor.base import HypervisorError

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
    return c


def _active_server(compute: Compute, headers: dict[str, str], name: str = "vm") -> str:
    resp = compute.create(headers, name=name)
    assert resp.status_code == 202, resp.text
    server_id: str = resp.json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, headers)["status"] == "ACTIVE"
    return server_id


def _shelved_image_id(compute: Compute, server_id: str) -> str | None:
    with compute.db.session() as session:
        return session.get(m.Instance, server_id).shelved_image_id


def _actions(compute: Compute, server_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = compute.client.get(f"{SERVERS}/{server_id}/os-instance-actions", headers=headers)
    assert resp.status_code == 200, resp.text
    actions: list[dict[str, Any]] = resp.json()["instanceActions"]
    return actions


def _image_data(compute: Compute, image_id: str) -> Path:
    path: Path = compute.cloud.config.images_dir / image_id
    return path


def test_shelve_offloads_and_unshelve_boots_from_the_snapshot(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("shelve-p")
    _, token = cloud.member("shelve-u", project["id"])
    headers = cloud.h(token)
    server_id = _active_server(compute, headers, name="keeper")

    resp = compute.action(server_id, headers, {"shelve": None})
    assert resp.status_code == 202, resp.text
    shown = compute.show(server_id, headers)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", "shelving")
    image_id = _shelved_image_id(compute, server_id)
    assert image_id is not None
    image = compute.client.get(f"{IMAGES}/{image_id}", headers=headers).json()
    assert (image["name"], image["status"], image["owner"]) == (
        "keeper-shelved",
        "queued",
        project["id"],
    )

    compute.converge()
    shown = compute.show(server_id, headers)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("SHELVED_OFFLOADED", None)
    assert shown["OS-EXT-STS:power_state"] == 0
    assert shown["image"]["id"] == compute.image_id  # still the image it was built from
    assert compute.loop.driver.get_state(server_id).power_state == "nostate"
    image = compute.client.get(f"{IMAGES}/{image_id}", headers=headers).json()
    assert (image["status"], image["image_type"], image["instance_uuid"]) == (
        "active",
        "snapshot",
        server_id,
    )
    assert _image_data(compute, image_id).is_file()
    admin_view = compute.show(server_id, cloud.admin)
    assert admin_view["OS-EXT-SRV-ATTR:host"] is None
    with compute.db.session() as session:
        assert session.get(m.Allocation, server_id) is None
    # Quota usage still counts the server, as Nova's does.
    limits = compute.client.get("/compute/v2.1/limits", headers=headers).json()
    assert limits["limits"]["absolute"]["totalInstancesUsed"] == 1
    assert _actions(compute, server_id, headers)[0]["action"] == "shelve"

    resp = compute.action(server_id, headers, {"unshelve": None})
    assert resp.status_code == 202, resp.text
    assert compute.show(server_id, headers)["status"] == "SHELVED_OFFLOADED"
    compute.converge()
    shown = compute.show(server_id, headers)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert shown["image"]["id"] == compute.image_id
    state = compute.loop.driver.get_state(server_id)
    assert state.power_state == "running"
    with compute.db.session() as session:
        assert session.get(m.Allocation, server_id) is not None
        assert session.get(m.Instance, server_id).shelved_image_id is None
    # The snapshot served its purpose: gone, with its data.
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=headers).status_code == 404
    assert not _image_data(compute, image_id).exists()
    actions = _actions(compute, server_id, headers)
    assert [a["action"] for a in actions[:2]] == ["unshelve", "shelve"]


@pytest.mark.parametrize("go", ["os-stop", "pause", "suspend"])
def test_shelve_from_any_stable_state_and_unshelve_runs_it(compute: Compute, go: str) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    assert compute.action(server_id, admin, {go: None}).status_code == 202
    compute.converge()
    assert compute.action(server_id, admin, {"shelve": None}).status_code == 202
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "SHELVED_OFFLOADED"
    assert compute.action(server_id, admin, {"unshelve": None}).status_code == 202
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"


def test_delete_a_shelved_server_removes_its_snapshot(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    compute.action(server_id, admin, {"shelve": None})
    compute.converge()
    image_id = _shelved_image_id(compute, server_id)
    assert image_id is not None and _image_data(compute, image_id).is_file()
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    # No host owns it: deleted at once, without an agent.
    assert compute.client.get(f"{SERVERS}/{server_id}", headers=admin).status_code == 404
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=admin).status_code == 404
    assert not _image_data(compute, image_id).exists()


def test_delete_while_shelving_leaves_nothing(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    compute.action(server_id, admin, {"shelve": None})
    image_id = _shelved_image_id(compute, server_id)
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    compute.converge()
    assert compute.client.get(f"{SERVERS}/{server_id}", headers=admin).status_code == 404
    with compute.db.session() as session:
        assert session.get(m.Image, image_id).status == "deleted"
        assert session.get(m.Allocation, server_id) is None


def test_wrong_states_bad_bodies_and_policy(compute: Compute) -> None:
    cloud = compute.cloud
    admin = cloud.admin
    project = cloud.project("shelve-rules")
    _, token = cloud.member("shelve-rules-u", project["id"])
    member = cloud.h(token)
    building = compute.create(member).json()["server"]["id"]
    resp = compute.action(building, member, {"shelve": None})
    assert resp.status_code == 409 and "conflictingRequest" in resp.json()
    compute.converge()
    server_id = building
    assert compute.action(server_id, member, {"unshelve": None}).status_code == 409
    assert compute.action(server_id, member, {"shelve": {"when": "now"}}).status_code == 400
    assert compute.action(server_id, member, {"shelveOffload": None}).status_code == 403
    assert compute.action(server_id, admin, {"shelveOffload": None}).status_code == 409
    # Locked by an admin: the owner cannot shelve it.
    assert compute.action(server_id, admin, {"lock": None}).status_code == 202
    assert compute.action(server_id, member, {"shelve": None}).status_code == 409
    assert compute.action(server_id, admin, {"unlock": None}).status_code == 202
    assert compute.action(server_id, member, {"shelve": None}).status_code == 202
    assert compute.action(server_id, member, {"shelve": None}).status_code == 409  # busy
    compute.converge()
    assert compute.show(server_id, member)["status"] == "SHELVED_OFFLOADED"
    for action in ("shelve", "os-start", "reboot", "createImage", "shelveOffload"):
        body = {action: {"type": "HARD"} if action == "reboot" else None}
        if action == "createImage":
            body = {action: {"name": "nope"}}
        resp = compute.action(server_id, admin, body)
        assert resp.status_code == 409, (action, resp.text)
    assert compute.action(server_id, member, {"unshelve": {"x": 1}}).status_code == 400
    # Another project sees no such server.
    other = cloud.project("shelve-other")
    _, other_token = cloud.member("shelve-other-u", other["id"])
    resp = compute.action(server_id, cloud.h(other_token), {"unshelve": None})
    assert resp.status_code == 404


def test_failed_shelve_keeps_the_server_on_its_host(
    compute: Compute, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)

    def broken(uuid: str, target: Path) -> None:
        raise HypervisorError("disk on fire")

    monkeypatch.setattr(compute.loop.driver, "snapshot", broken)
    compute.action(server_id, admin, {"shelve": None})
    image_id = _shelved_image_id(compute, server_id)
    compute.converge()
    shown = compute.show(server_id, admin)
    # Stopped for the snapshot, which failed: SHUTOFF on its host, as Nova leaves it.
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("SHUTOFF", None)
    assert shown["OS-EXT-SRV-ATTR:host"] == "fake-1"
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=admin).status_code == 404
    assert _shelved_image_id(compute, server_id) is None
    action = _actions(compute, server_id, admin)[0]
    assert action["action"] == "shelve" and "disk on fire" in action["message"]
    monkeypatch.undo()
    assert compute.action(server_id, admin, {"os-start": None}).status_code == 202
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"


def test_agent_dying_after_the_upload_finishes_the_offload_on_restart(
    compute: Compute, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)

    class Died(Exception):
        pass

    def dies(uuid: str) -> None:
        raise Died

    monkeypatch.setattr(compute.loop.driver, "destroy", dies)
    compute.action(server_id, admin, {"shelve": None})
    with pytest.raises(Died):
        compute.converge()
    image_id = _shelved_image_id(compute, server_id)
    with compute.db.session() as session:
        assert session.get(m.Image, image_id).status == "active"
    shown = compute.show(server_id, admin)
    assert shown["OS-EXT-STS:task_state"] == "shelving_image_uploading"
    monkeypatch.undo()
    compute.converge()  # no second snapshot: the upload is there, only the offload is left
    assert compute.show(server_id, admin)["status"] == "SHELVED_OFFLOADED"
    assert _shelved_image_id(compute, server_id) == image_id
    assert compute.loop.driver.get_state(server_id).power_state == "nostate"


def test_unshelve_without_room_stays_shelved(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    compute.action(server_id, admin, {"shelve": None})
    compute.converge()
    service = {"host": "fake-1", "binary": "nova-compute"}
    resp = compute.client.put("/compute/v2.1/os-services/disable", headers=admin, json=service)
    assert resp.status_code == 200, resp.text
    assert compute.action(server_id, admin, {"unshelve": None}).status_code == 202
    compute.converge()
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("SHELVED_OFFLOADED", None)
    action = _actions(compute, server_id, admin)[0]
    assert action["action"] == "unshelve" and "No valid host" in action["message"]
    # Room again: a second unshelve succeeds.
    resp = compute.client.put("/compute/v2.1/os-services/enable", headers=admin, json=service)
    assert resp.status_code == 200, resp.text
    assert compute.action(server_id, admin, {"unshelve": None}).status_code == 202
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "ACTIVE"


def test_stuck_shelve_ends_with_the_server_where_it_was(compute: Compute) -> None:
    from kumo.controller.stuck import resolve_stuck

    admin = compute.cloud.admin
    server_id = _active_server(compute, admin)
    compute.action(server_id, admin, {"shelve": None})
    image_id = _shelved_image_id(compute, server_id)
    with compute.db.session() as session:
        instance = session.get(m.Instance, server_id)
        instance.task_deadline = instance.task_deadline - dt.timedelta(hours=1)
    assert resolve_stuck(compute.db) == 1
    shown = compute.show(server_id, admin)
    assert (shown["status"], shown["OS-EXT-STS:task_state"]) == ("ACTIVE", None)
    assert compute.client.get(f"{IMAGES}/{image_id}", headers=admin).status_code == 404
    compute.converge()  # the agent has nothing left to do
    assert compute.show(server_id, admin)["status"] == "ACTIVE"

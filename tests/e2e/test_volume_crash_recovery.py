"""Crash recovery for volumes (issue 5, "Done when" 4): `kill -9` of `kumo up` (API,
controller and agent in one process) right after a burst of volume creates and right after
an attach to a running guest. After a restart on the same state directory every volume
reaches a stable status, the guest has exactly the disks the database says, and
`kumo db check` is clean. The guest's qemu outlives the kill and is adopted, not restarted.

Every process is stopped by PID in a finalizer; every qemu a test caused is killed by PID.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from computeapi import (
    Api,
    Guests,
    db_check,
    kill9,
    kill_leftovers,
    pidfile,
    qemu_pids,
    require_qemu,
)
from kumoproc import Cloud, start_cloud, wait_for

V3 = "/volume/v3"
BOOT = 240.0  # TCG on a busy 2-vCPU machine
STABLE = ("available", "in-use", "error")


def _volumes(api: Api) -> dict[str, dict[str, Any]]:
    resp = api.client.get(f"{V3}/volumes/detail")
    assert resp.status_code == 200, resp.text
    return {v["id"]: v for v in resp.json()["volumes"]}


def _settled(api: Api, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    def probe() -> dict[str, dict[str, Any]] | None:
        shown = _volumes(api)
        assert set(ids) <= set(shown), f"volumes vanished: {set(ids) - set(shown)}"
        return shown if all(shown[i]["status"] in STABLE for i in ids) else None

    return wait_for(probe, timeout, "every volume in a stable status", interval=0.5)


def _console(api: Api, server_id: str) -> str:
    resp = api.client.post(
        f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}}
    )
    return str(resp.json().get("output", "")) if resp.status_code == 200 else ""


def test_kill_up_mid_create_and_mid_attach(tmp_path: Path) -> None:
    require_qemu()
    state = tmp_path / "state"
    instances = state / "agent" / "instances"
    guests = Guests()
    first = start_cloud(state)
    second: Cloud | None = None
    try:
        api = Api(first.url, first.admin_password)
        server_id = guests.add(api.create_server("vm", api.image_id()).json()["server"]["id"])
        settled = api.wait_settled([server_id], BOOT)[server_id]
        assert settled["status"] == "ACTIVE", settled.get("fault")
        wait_for(
            lambda: "kumo-guest: hostname vm" in _console(api, server_id),
            BOOT, "the guest to boot", interval=1.0,
            why=lambda: f"console: {_console(api, server_id)[-1500:]!r}",
        )  # fmt: skip
        pid = pidfile(instances, server_id)
        hot = api.client.post(f"{V3}/volumes", json={"volume": {"size": 1, "name": "hot"}})
        hot_id = hot.json()["volume"]["id"]
        _settled(api, [hot_id], 120)
        # A burst of creates and an attach, then kill -9 before the agent can finish.
        burst = [
            api.client.post(f"{V3}/volumes", json={"volume": {"size": 1, "name": f"b{i}"}})
            for i in range(5)
        ]
        assert all(r.status_code == 202 for r in burst), [r.text for r in burst]
        attach = api.client.post(
            f"/compute/v2.1/servers/{server_id}/os-volume_attachments",
            json={"volumeAttachment": {"volumeId": hot_id}},
        )
        assert attach.status_code == 200, attach.text
        kill9(first.process)
        api.close()
        assert qemu_pids(server_id) == [pid], "the guest should outlive kumo up"

        second = start_cloud(state)
        api = Api(second.url, second.admin_password)
        ids = [r.json()["volume"]["id"] for r in burst] + [hot_id]
        settled = _settled(api, ids, 180)
        assert all(settled[i]["status"] == "available" for i in ids[:-1]), settled
        assert settled[hot_id]["status"] == "in-use", settled[hot_id]
        assert settled[hot_id]["attachments"][0]["server_id"] == server_id
        for volume_id in ids[:-1]:
            assert list(state.glob(f"agent/volumes/file/volume-{volume_id}.qcow2"))
        # The guest got the disk, from the same qemu: adopted, not restarted.
        wait_for(
            lambda: "kumo-guest: disk vdc" in _console(api, server_id),
            120, "the hot-plugged disk on the guest's console", interval=1.0,
        )  # fmt: skip
        assert qemu_pids(server_id) == [pid]
        db_check(state)

        # Detach, delete everything: nothing left behind.
        resp = api.client.delete(
            f"/compute/v2.1/servers/{server_id}/os-volume_attachments/{hot_id}"
        )
        assert resp.status_code == 202, resp.text
        wait_for(
            lambda: _volumes(api)[hot_id]["status"] == "available", 300, "the detach",
            interval=0.5,
        )  # fmt: skip
        for volume_id in ids:
            assert api.client.delete(f"{V3}/volumes/{volume_id}").status_code == 202
        wait_for(lambda: not set(ids) & set(_volumes(api)), 120, "volumes gone", interval=0.5)
        assert not list(state.glob("agent/volumes/file/volume-*"))
        db_check(state)
        api.close()
    finally:
        guests.cleanup()
        for cloud in (first, second):
            if cloud is not None:
                kill_leftovers(cloud.process)

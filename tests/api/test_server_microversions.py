"""The server body across compute microversions 2.16 to 2.19: ``host_status`` (2.16),
``description`` (2.19), and the core view that update and rebuild answer with, on every
database backend."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from test_servers import SERVERS, Compute

from kumo.db import models as m

# The fields tempest's update/rebuild schemas allow before 2.75 (2.9 adds locked, 2.19
# description); anything else in those answers fails tempest.
CORE = {
    "id",
    "name",
    "links",
    "status",
    "tenant_id",
    "user_id",
    "metadata",
    "hostId",
    "image",
    "flavor",
    "created",
    "updated",
    "addresses",
    "accessIPv4",
    "accessIPv6",
    "progress",
    "OS-DCF:diskConfig",
    "locked",
}


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _at(headers: dict[str, str], version: str) -> dict[str, str]:
    return {**headers, "X-OpenStack-Nova-API-Version": version}


def _show(compute: Compute, server_id: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = compute.client.get(f"{SERVERS}/{server_id}", headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()["server"]  # type: ignore[no-any-return]


def _set_host(compute: Compute, **values: Any) -> None:
    with compute.db.session() as session:
        host = session.get(m.Host, compute.host_id)
        for key, value in values.items():
            setattr(host, key, value)


def test_host_status_from_2_16_for_admins(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    assert _show(compute, server_id, _at(admin, "2.16"))["host_status"] == ""  # no host yet
    compute.converge()
    assert "host_status" not in _show(compute, server_id, _at(admin, "2.15"))
    assert _show(compute, server_id, _at(admin, "2.16"))["host_status"] == "UP"
    detail = compute.client.get(f"{SERVERS}/detail", headers=_at(admin, "2.16")).json()
    assert [s["host_status"] for s in detail["servers"]] == ["UP"]
    _set_host(compute, enabled=False)
    assert _show(compute, server_id, _at(admin, "2.16"))["host_status"] == "MAINTENANCE"
    _set_host(compute, forced_down=True)  # forced down wins over disabled, as in Nova
    assert _show(compute, server_id, _at(admin, "2.16"))["host_status"] == "DOWN"
    _set_host(compute, enabled=True, forced_down=False, last_heartbeat_at=dt.datetime(2020, 1, 1))
    assert _show(compute, server_id, _at(admin, "2.16"))["host_status"] == "UNKNOWN"


def test_host_status_is_hidden_from_members(compute: Compute) -> None:
    cloud = compute.cloud
    project = cloud.project("hs-p")
    _, token = cloud.member("hs-u", project["id"])
    h = _at(cloud.h(token), "2.16")
    server_id = compute.create(cloud.h(token)).json()["server"]["id"]
    compute.converge()
    assert "host_status" not in _show(compute, server_id, h)
    detail = compute.client.get(f"{SERVERS}/detail", headers=h).json()["servers"]
    assert "host_status" not in detail[0]


@pytest.mark.parametrize(("version", "extra"), [("2.16", set()), ("2.19", {"description"})])
def test_update_and_rebuild_answer_the_core_view(
    compute: Compute, version: str, extra: set[str]
) -> None:
    admin = compute.cloud.admin
    server_id = compute.create(admin).json()["server"]["id"]
    compute.converge()
    resp = compute.client.put(
        f"{SERVERS}/{server_id}", json={"server": {"name": "renamed"}}, headers=_at(admin, version)
    )
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["server"]) == CORE | extra
    assert resp.json()["server"]["name"] == "renamed"
    resp = compute.action(
        server_id, _at(admin, version), {"rebuild": {"imageRef": compute.image_id}}
    )
    assert resp.status_code == 202, resp.text
    assert set(resp.json()["server"]) == CORE | extra | {"adminPass"}
    # show still carries every extension attribute
    assert {"key_name", "OS-EXT-STS:vm_state", "host_status"} <= set(
        _show(compute, server_id, _at(admin, version))
    )


def _create(compute: Compute, version: str, **extra: Any) -> Any:
    body = {"server": {"name": "vm", "imageRef": compute.image_id, "flavorRef": "1", **extra}}
    return compute.client.post(SERVERS, json=body, headers=_at(compute.cloud.admin, version))


def test_description_on_create_from_2_19(compute: Compute) -> None:
    admin = compute.cloud.admin
    for value in ("web tier", None):
        resp = _create(compute, "2.18", description=value)
        assert resp.status_code == 400, resp.text
        assert "description" in resp.json()["badRequest"]["message"]
    assert compute.client.get(SERVERS, headers=admin).json()["servers"] == []
    described = _create(compute, "2.19", description="web tier").json()["server"]["id"]
    assert _show(compute, described, _at(admin, "2.19"))["description"] == "web tier"
    assert "description" not in _show(compute, described, _at(admin, "2.18"))
    plain = _create(compute, "2.19").json()["server"]["id"]
    assert _show(compute, plain, _at(admin, "2.19"))["description"] is None
    legacy = _create(compute, "2.1").json()["server"]["id"]  # Nova: the name, before 2.19
    assert _show(compute, legacy, _at(admin, "2.19"))["description"] == "vm"
    detail = compute.client.get(f"{SERVERS}/detail", headers=_at(admin, "2.19")).json()
    assert {s["id"]: s["description"] for s in detail["servers"]} == {
        described: "web tier",
        plain: None,
        legacy: "vm",
    }


@pytest.mark.parametrize("bad", ["x" * 256, "two\nlines", "bell\x07", 42, ["a"], {"a": 1}])
def test_bad_descriptions_are_400_and_change_nothing(compute: Compute, bad: Any) -> None:
    admin = compute.cloud.admin
    resp = _create(compute, "2.19", description=bad)
    assert resp.status_code == 400, resp.text
    assert "description" in resp.json()["badRequest"]["message"]
    server_id = _create(compute, "2.19", description="kept").json()["server"]["id"]
    compute.converge()
    h = _at(admin, "2.19")
    resp = compute.client.put(
        f"{SERVERS}/{server_id}", json={"server": {"name": "new", "description": bad}}, headers=h
    )
    assert resp.status_code == 400, resp.text
    resp = compute.action(
        server_id, h, {"rebuild": {"imageRef": compute.image_id, "name": "new", "description": bad}}
    )
    assert resp.status_code == 400, resp.text
    shown = _show(compute, server_id, h)
    assert (shown["name"], shown["description"], shown["status"]) == ("vm", "kept", "ACTIVE")
    assert len(compute.client.get(SERVERS, headers=admin).json()["servers"]) == 1


def test_description_on_update_and_rebuild(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _create(compute, "2.19").json()["server"]["id"]
    compute.converge()
    url = f"{SERVERS}/{server_id}"
    resp = compute.client.put(
        url, json={"server": {"description": "x" * 255}}, headers=_at(admin, "2.19")
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["server"]["description"] == "x" * 255
    resp = compute.client.put(
        url, json={"server": {"description": "é ünïcode ✓"}}, headers=_at(admin, "2.19")
    )
    assert resp.json()["server"]["description"] == "é ünïcode ✓"
    resp = compute.client.put(
        url, json={"server": {"description": None}}, headers=_at(admin, "2.19")
    )
    assert resp.json()["server"]["description"] is None
    resp = compute.client.put(
        url, json={"server": {"description": "old"}}, headers=_at(admin, "2.18")
    )
    assert resp.status_code == 400, resp.text
    rebuild = {"rebuild": {"imageRef": compute.image_id, "description": "rebuilt"}}
    resp = compute.action(server_id, _at(admin, "2.18"), rebuild)
    assert resp.status_code == 400, resp.text
    assert compute.show(server_id, admin)["status"] == "ACTIVE"  # no rebuild started
    resp = compute.action(server_id, _at(admin, "2.19"), rebuild)
    assert resp.status_code == 202, resp.text
    assert resp.json()["server"]["description"] == "rebuilt"
    compute.converge()
    assert _show(compute, server_id, _at(admin, "2.19"))["description"] == "rebuilt"

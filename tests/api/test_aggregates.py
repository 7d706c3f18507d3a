"""Host aggregates (os-aggregates) and the availability zones they define, on every database
backend: CRUD and actions with Nova's shapes and errors, admin-only policy, the zone listing,
and servers placed only on the hosts of the zone they ask for (two fake hosts)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from test_servers import Compute

from kumo.agent.compute import ComputeLoop
from kumo.db import models as m
from kumo.drivers.hypervisor.fake import FakeDriver

V21 = "/compute/v2.1"
AGG = f"{V21}/os-aggregates"
CREATE_KEYS = {"id", "name", "availability_zone", "created_at", "updated_at", "deleted_at"}
CREATE_KEYS |= {"deleted"}


class Two(Compute):
    """The cloud with two fake hosts, fake-1 and fake-2, each with its agent loop."""

    def __init__(self, cloud: Any, tmp_path: Path) -> None:
        super().__init__(cloud, tmp_path)
        self.host2 = str(uuid.uuid4())
        self.register(self.host2, "fake-2", 8, 8704)
        self.loop2 = ComputeLoop(
            self.agent_client, "/agent/v1", self.host2, FakeDriver(tmp_path / "fake2")
        )

    def converge(self) -> None:
        super().converge()
        self.loop2.sync_once()

    def agg(self, name: str, zone: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if zone is not None:
            body["availability_zone"] = zone
        resp = self.client.post(AGG, json={"aggregate": body}, headers=self.cloud.admin)
        assert resp.status_code == 200, resp.text
        created: dict[str, Any] = resp.json()["aggregate"]
        return created

    def act(self, agg_id: int, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        resp = self.client.post(f"{AGG}/{agg_id}/action", json=body, headers=self.cloud.admin)
        assert resp.status_code == status, resp.text
        answer: dict[str, Any] = resp.json()
        return answer


@pytest.fixture
def two(cloud: Any, tmp_path: Path) -> Two:
    return Two(cloud, tmp_path)


def _error(resp: Any, status: int) -> str:
    """The message of a Nova-shaped error body with this status."""
    kind = {400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert list(body) == [kind[status]], body
    assert body[kind[status]]["code"] == status
    message: str = body[kind[status]]["message"]
    return message


def test_create_list_show_update_delete(two: Two) -> None:
    admin = two.cloud.admin
    created = two.agg("rack-1")
    assert set(created) == CREATE_KEYS  # create answers without hosts and metadata
    assert isinstance(created["id"], int) and created["deleted"] is False
    assert created["availability_zone"] is None and created["updated_at"] is None
    agg_id = created["id"]
    shown = two.client.get(f"{AGG}/{agg_id}", headers=admin).json()["aggregate"]
    assert shown == {**created, "hosts": [], "metadata": {}}
    listed = two.client.get(AGG, headers=admin).json()["aggregates"]
    assert [a["id"] for a in listed] == [agg_id]

    resp = two.client.put(
        f"{AGG}/{agg_id}",
        json={"aggregate": {"name": "rack-one", "availability_zone": "az1"}},
        headers=admin,
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()["aggregate"]
    assert (updated["name"], updated["availability_zone"]) == ("rack-one", "az1")
    assert updated["metadata"] == {"availability_zone": "az1"} and updated["updated_at"]

    resp = two.client.delete(f"{AGG}/{agg_id}", headers=admin)
    assert (resp.status_code, resp.content) == (200, b"")
    _error(two.client.get(f"{AGG}/{agg_id}", headers=admin), 404)
    assert two.client.get(AGG, headers=admin).json()["aggregates"] == []
    assert two.agg("rack-one")["name"] == "rack-one"  # a deleted aggregate frees its name


@pytest.mark.parametrize(
    "body",
    [
        {"aggregate": {"name": ""}},
        {"aggregate": {"name": "a" * 256}},
        {"aggregate": {"name": " padded"}},
        {"aggregate": {}},
        {"aggregate": {"name": "x", "colour": "red"}},
        {"aggregate": {"name": "x"}, "more": 1},
        {"aggregate": {"name": "x", "availability_zone": "a:b"}},
        {"aggregate": {"name": "x", "availability_zone": ""}},
        {"aggregate": "x"},
        {"name": "x"},
    ],
)
def test_bad_create_bodies_are_400(two: Two, body: dict[str, Any]) -> None:
    _error(two.client.post(AGG, json=body, headers=two.cloud.admin), 400)
    assert two.client.get(AGG, headers=two.cloud.admin).json()["aggregates"] == []


def test_bad_ids_updates_and_duplicates(two: Two) -> None:
    admin = two.cloud.admin
    first = two.agg("a1")
    two.agg("a2")
    assert "already exists" in _error(
        two.client.post(AGG, json={"aggregate": {"name": "a1"}}, headers=admin), 409
    )
    _error(two.client.get(f"{AGG}/-1", headers=admin), 404)
    _error(two.client.get(f"{AGG}/99999999999", headers=admin), 404)
    _error(two.client.get(f"{AGG}/abc", headers=admin), 400)
    _error(two.client.delete(f"{AGG}/-1", headers=admin), 404)
    put = f"{AGG}/{first['id']}"
    _error(two.client.put(put, json={"aggregate": {}}, headers=admin), 400)
    _error(two.client.put(put, json={"aggregate": {"hosts": []}}, headers=admin), 400)
    _error(two.client.put(put, json={"aggregate": {"name": "a2"}}, headers=admin), 409)
    _error(
        two.client.put(put, json={"aggregate": {"availability_zone": "x:y"}}, headers=admin), 400
    )
    shown = two.client.get(put, headers=admin).json()["aggregate"]
    assert (shown["name"], shown["availability_zone"]) == ("a1", None)


def test_host_actions(two: Two) -> None:
    admin = two.cloud.admin
    agg_id = two.agg("rack", "az1")["id"]
    assert "could not be found" in _error(
        two.client.post(
            f"{AGG}/{agg_id}/action", json={"add_host": {"host": "nope"}}, headers=admin
        ),
        404,
    )
    added = two.act(agg_id, {"add_host": {"host": "fake-1"}})["aggregate"]
    assert added["hosts"] == ["fake-1"]
    assert added["metadata"] == {"availability_zone": "az1"}
    two.act(agg_id, {"add_host": {"host": "fake-1"}}, 409)
    # Not empty: 400, and it stays.
    _error(two.client.delete(f"{AGG}/{agg_id}", headers=admin), 400)
    two.act(agg_id, {"remove_host": {"host": "fake-2"}}, 404)  # not a member
    two.act(agg_id, {"remove_host": {"host": "nope"}}, 404)
    # Bad action bodies.
    two.act(agg_id, {"add_host": {}}, 400)
    two.act(agg_id, {"add_host": {"host": "fake-2", "x": 1}}, 400)
    two.act(agg_id, {"add_host": {"host": ""}}, 400)
    two.act(agg_id, {"fly": {}}, 400)
    assert two.act(agg_id, {"remove_host": {"host": "fake-1"}})["aggregate"]["hosts"] == []
    assert two.client.delete(f"{AGG}/{agg_id}", headers=admin).status_code == 200


def test_a_host_is_in_one_zone_only(two: Two) -> None:
    zone1 = two.agg("z1", "az1")["id"]
    zone2 = two.agg("z2", "az2")["id"]
    plain = two.agg("plain")["id"]
    two.act(zone1, {"add_host": {"host": "fake-1"}})
    assert "az1" in _error(
        two.client.post(
            f"{AGG}/{zone2}/action",
            json={"add_host": {"host": "fake-1"}},
            headers=two.cloud.admin,
        ),
        409,
    )
    same = two.agg("z1-too", "az1")["id"]
    two.act(same, {"add_host": {"host": "fake-1"}})  # same zone: fine
    two.act(plain, {"add_host": {"host": "fake-1"}})  # no zone: fine
    # Giving the plain aggregate another zone would move fake-1 into two zones.
    two.act(plain, {"set_metadata": {"metadata": {"availability_zone": "az2"}}}, 400)
    resp = two.client.put(
        f"{AGG}/{plain}",
        json={"aggregate": {"availability_zone": "az2"}},
        headers=two.cloud.admin,
    )
    _error(resp, 400)
    shown = two.client.get(f"{AGG}/{plain}", headers=two.cloud.admin).json()["aggregate"]
    assert shown["availability_zone"] is None and shown["metadata"] == {}


def test_set_metadata(two: Two) -> None:
    agg_id = two.agg("meta")["id"]
    got = two.act(agg_id, {"set_metadata": {"metadata": {"ssd": "true", "gpu": "no"}}})
    assert got["aggregate"]["metadata"] == {"ssd": "true", "gpu": "no"}
    got = two.act(
        agg_id,
        {"set_metadata": {"metadata": {"gpu": None, "absent": None, "availability_zone": "az9"}}},
    )
    assert got["aggregate"]["metadata"] == {"ssd": "true", "availability_zone": "az9"}
    assert got["aggregate"]["availability_zone"] == "az9"
    got = two.act(agg_id, {"set_metadata": {"metadata": {"availability_zone": None}}})
    assert got["aggregate"]["availability_zone"] is None
    assert got["aggregate"]["metadata"] == {"ssd": "true"}
    for bad in (
        {"set_metadata": {"metadata": {"availability_zone": ""}}},
        {"set_metadata": {"metadata": {"availability_zone": "a:b"}}},
        {"set_metadata": {"metadata": {"k": 1}}},
        {"set_metadata": {"metadata": {"": "v"}}},
        {"set_metadata": {"metadata": {"k": "v" * 256}}},
        {"set_metadata": {"metadata": "x"}},
        {"set_metadata": {}},
    ):
        two.act(agg_id, bad, 400)
    shown = two.client.get(f"{AGG}/{agg_id}", headers=two.cloud.admin).json()["aggregate"]
    assert shown["metadata"] == {"ssd": "true"}


def test_non_admin_is_forbidden(two: Two) -> None:
    cloud = two.cloud
    project = cloud.project("agg-p")
    _, token = cloud.member("agg-u", project["id"])
    h = cloud.h(token)
    agg_id = two.agg("mine")["id"]
    calls = [
        ("GET", AGG, None),
        ("POST", AGG, {"aggregate": {"name": "theirs"}}),
        ("GET", f"{AGG}/{agg_id}", None),
        ("PUT", f"{AGG}/{agg_id}", {"aggregate": {"name": "x"}}),
        ("DELETE", f"{AGG}/{agg_id}", None),
        ("POST", f"{AGG}/{agg_id}/action", {"add_host": {"host": "fake-1"}}),
        ("POST", f"{AGG}/{agg_id}/action", {"remove_host": {"host": "fake-1"}}),
        ("POST", f"{AGG}/{agg_id}/action", {"set_metadata": {"metadata": {"a": "b"}}}),
    ]
    for method, path, body in calls:
        _error(two.client.request(method, path, json=body, headers=h), 403)
    shown = two.client.get(f"{AGG}/{agg_id}", headers=cloud.admin).json()["aggregate"]
    assert (shown["name"], shown["hosts"], shown["metadata"]) == ("mine", [], {})


def test_zones_come_from_aggregates(two: Two) -> None:
    admin = two.cloud.admin
    empty = two.agg("empty", "az-empty")["id"]
    agg_id = two.agg("rack", "az1")["id"]
    two.act(agg_id, {"add_host": {"host": "fake-2"}})
    zones = two.client.get(f"{V21}/os-availability-zone", headers=admin).json()
    assert zones["availabilityZoneInfo"] == [
        {"zoneName": "az1", "zoneState": {"available": True}, "hosts": None},
        {"zoneName": "nova", "zoneState": {"available": True}, "hosts": None},
    ]  # a zone without hosts is not listed, as in Nova
    detail = two.client.get(f"{V21}/os-availability-zone/detail", headers=admin).json()
    by_zone = {z["zoneName"]: z["hosts"] for z in detail["availabilityZoneInfo"]}
    assert set(by_zone["az1"]) == {"fake-2"} and set(by_zone["nova"]) == {"fake-1"}
    assert by_zone["az1"]["fake-2"]["nova-compute"]["active"] is True
    services = two.client.get(f"{V21}/os-services", headers=admin).json()["services"]
    assert {s["host"]: s["zone"] for s in services} == {"fake-1": "nova", "fake-2": "az1"}
    # A zone whose every host is disabled is listed as not available.
    two.client.put(
        f"{V21}/os-services/disable",
        json={"host": "fake-2", "binary": "nova-compute"},
        headers=admin,
    )
    zones = two.client.get(f"{V21}/os-availability-zone", headers=admin).json()
    state = {z["zoneName"]: z["zoneState"]["available"] for z in zones["availabilityZoneInfo"]}
    assert state == {"az1": False, "nova": True}
    assert two.client.delete(f"{AGG}/{empty}", headers=admin).status_code == 200


def test_servers_land_in_the_zone_they_ask_for(two: Two) -> None:
    cloud = two.cloud
    admin = cloud.admin
    project = cloud.project("az-p")
    _, token = cloud.member("az-u", project["id"])
    h = cloud.h(token)
    agg_id = two.agg("rack", "az1")["id"]
    two.act(agg_id, {"add_host": {"host": "fake-2"}})

    in_az1 = [two.create(h, availability_zone="az1").json()["server"]["id"] for _ in range(3)]
    in_nova = two.create(h, availability_zone="nova").json()["server"]["id"]
    anywhere = two.create(h).json()["server"]["id"]
    assert two.show(in_az1[0], h)["OS-EXT-AZ:availability_zone"] == "az1"  # before placement
    assert two.show(anywhere, h)["OS-EXT-AZ:availability_zone"] == ""
    two.converge()
    for server_id in in_az1:
        shown = two.show(server_id, admin)
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "fake-2")
        assert shown["OS-EXT-AZ:availability_zone"] == "az1"
    assert two.show(in_nova, admin)["OS-EXT-SRV-ATTR:host"] == "fake-1"
    placed = two.show(anywhere, admin)
    zone = {"fake-1": "nova", "fake-2": "az1"}[placed["OS-EXT-SRV-ATTR:host"]]
    assert placed["OS-EXT-AZ:availability_zone"] == zone
    with two.db.session() as session:
        assert session.get(m.Instance, in_az1[0]).availability_zone == "az1"

    # Unknown zone, a zone with no hosts, a forced host by a member: refused, nothing made.
    msg = _error(two.create(h, availability_zone="nowhere"), 400)
    assert msg == "The requested availability zone is not available"
    two.agg("hostless", "az-empty")
    _error(two.create(h, availability_zone="az-empty"), 400)
    _error(two.create(h, availability_zone="az1:fake-1"), 403)
    _error(two.create(admin, availability_zone="az1:no-such-host"), 400)

    # An admin may force a host with az:host (Nova bypasses the zone filter for it).
    forced = two.create(admin, availability_zone="nova:fake-2").json()["server"]["id"]
    two.converge()
    assert two.show(forced, admin)["OS-EXT-SRV-ATTR:host"] == "fake-2"

    # The zone of hosts that run servers does not change under them.
    resp = two.client.put(
        f"{AGG}/{agg_id}", json={"aggregate": {"availability_zone": "az2"}}, headers=admin
    )
    _error(resp, 400)


def test_no_host_in_the_zone_fits_says_why(two: Two) -> None:
    admin = two.cloud.admin
    agg_id = two.agg("rack", "az1")["id"]
    two.act(agg_id, {"add_host": {"host": "fake-2"}})
    server_id = two.create(admin, availability_zone="az1").json()["server"]["id"]
    with two.db.session() as session:
        session.get(m.Host, two.host2).forced_down = True  # fenced after the request
    two.converge()
    shown = two.show(server_id, admin)
    assert shown["status"] == "ERROR"
    assert "No valid host" in shown["fault"]["message"]
    with two.db.session() as session:
        details = session.get(m.Instance, server_id).fault["details"]
    assert "fake-1: in availability zone nova, not az1" in details
    assert "fake-2: forced down" in details

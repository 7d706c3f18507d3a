"""Hosts (registration, heartbeats, liveness), the agent API, and `kumo db check`."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from kumo.core import checks, hosts
from kumo.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from kumo.db import models as m
from kumo.db.types import utcnow

from apihelpers import assert_error, make_client


def _body(name: str = "node1", host_id: str | None = None, **extra):
    body = {
        "id": host_id or str(uuid.uuid4()),
        "name": name,
        "agent_version": "0.1.0",
        "agent_api_versions": ["v1"],
        "capabilities": {"virt": "kvm"},
        "inventory": {"vcpus": 8, "memory_mb": 16384},
    }
    body.update(extra)
    return body


def test_register_and_reregister(database):
    host_id = str(uuid.uuid4())
    with database.session() as s:
        host = hosts.register(s, _body("node1", host_id))
        assert host.id == host_id and host.name == "node1"
        assert host.last_heartbeat_at is not None
    # Same UUID, new name: a rename, not a second host.
    with database.session() as s:
        host = hosts.register(s, _body("node1-renamed", host_id, inventory={"vcpus": 4}))
    with database.session() as s:
        rows = list(s.query(m.Host))
        assert [(h.id, h.name) for h in rows] == [(host_id, "node1-renamed")]
        assert rows[0].inventory == {"vcpus": 4}
        assert rows[0].capabilities == {"virt": "kvm"}


def test_register_name_clash_409(database):
    with database.session() as s:
        hosts.register(s, _body("node1"))
    with database.session() as s, pytest.raises(Conflict) as exc:
        hosts.register(s, _body("node1"))
    assert exc.value.status == 409


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "", None, 12])
def test_register_bad_uuid_400(database, bad_id):
    with database.session() as s, pytest.raises(BadRequest):
        hosts.register(s, _body(host_id="x") | {"id": bad_id})


@pytest.mark.parametrize(
    "changes",
    [
        {"agent_api_versions": ["v0"]},
        {"agent_api_versions": []},
        {"agent_api_versions": "v1"},
        {"agent_api_versions": [1]},
        {"name": ""},
        {"name": 5},
        {"name": "x" * 256},
        {"capabilities": []},
        {"inventory": "big"},
    ],
)
def test_register_bad_input_400(database, changes):
    with database.session() as s, pytest.raises(BadRequest):
        hosts.register(s, _body() | changes)


def test_heartbeat(database):
    with database.session() as s:
        host = hosts.register(s, _body())
        host.last_heartbeat_at = utcnow() - dt.timedelta(hours=1)
    before = utcnow()
    with database.session() as s:
        hosts.heartbeat(s, host.id)
    with database.session() as s:
        assert s.get(m.Host, host.id).last_heartbeat_at >= before - dt.timedelta(seconds=1)
    with database.session() as s, pytest.raises(NotFound):
        hosts.heartbeat(s, str(uuid.uuid4()))
    with database.session() as s, pytest.raises(BadRequest):
        hosts.heartbeat(s, "nope")


def test_status_of_by_timeout():
    now = dt.datetime(2030, 1, 1, 12, 0, 0)
    host = m.Host(id=str(uuid.uuid4()), name="n", last_heartbeat_at=now - dt.timedelta(seconds=29))
    status = hosts.status_of(host, 30.0, now)
    assert status.up and status.state == "up"
    assert status.seconds_since_heartbeat == pytest.approx(29.0)
    assert hosts.status_of(host, 30.0, now + dt.timedelta(seconds=1)).up  # exactly 30s
    late = hosts.status_of(host, 30.0, now + dt.timedelta(seconds=2))
    assert not late.up and late.state == "down"
    never = m.Host(id=str(uuid.uuid4()), name="m", last_heartbeat_at=None)
    assert hosts.status_of(never, 30.0, now).state == "down"
    assert hosts.status_of(never, 30.0, now).seconds_since_heartbeat is None


def test_list_and_find_hosts(database):
    with database.session() as s:
        a = hosts.register(s, _body("b-node"))
        b = hosts.register(s, _body("a-node"))
        b.last_heartbeat_at = utcnow() - dt.timedelta(minutes=5)
    with database.session() as s:
        listed = hosts.list_hosts(s, 30.0)
        assert [(st.host.name, st.state) for st in listed] == [("a-node", "down"), ("b-node", "up")]
        assert hosts.find_host(s, "b-node").id == a.id
        assert hosts.find_host(s, a.id).name == "b-node"
        with pytest.raises(NotFound):
            hosts.find_host(s, "zzz")
        host = hosts.set_enabled(s, "a-node", False, "maintenance")
        assert (host.enabled, host.disabled_reason) == (False, "maintenance")
        host = hosts.set_enabled(s, "a-node", True)
        assert (host.enabled, host.disabled_reason) == (True, None)


def test_host_credential(database):
    with database.session() as s:
        cred = hosts.ensure_host_credential(s)
        assert cred and hosts.ensure_host_credential(s) == cred
        hosts.check_host_credential(s, cred)
        for wrong in (None, "", cred + "x"):
            with pytest.raises(Unauthorized):
                hosts.check_host_credential(s, wrong)


# Agent API -----------------------------------------------------------------------------


@pytest.fixture
def agent_client(config, database):
    with database.session() as s:
        cred = hosts.ensure_host_credential(s)
    with make_client(config, database) as client:
        yield client, {"X-Kumo-Host-Credential": cred}


def test_agent_api(agent_client):
    client, headers = agent_client
    resp = client.get("/agent/v1")
    assert resp.status_code == 200
    assert "v1" in resp.json()["version"]["served"]
    body = _body("agent-node")
    resp = client.post("/agent/v1/hosts", json={"host": body}, headers=headers)
    assert resp.status_code == 200, resp.text
    host = resp.json()["host"]
    assert host == {
        "id": body["id"],
        "name": "agent-node",
        "enabled": True,
        "disabled_reason": None,
        "forced_down": False,  # a self-fenced agent stays fenced while it is true
    }
    resp = client.post(f"/agent/v1/hosts/{body['id']}/heartbeat", headers=headers)
    assert resp.status_code == 200 and resp.json()["host"]["id"] == body["id"]


def test_agent_api_errors(agent_client):
    client, headers = agent_client
    body = _body("agent-node")
    for bad in ({}, {"X-Kumo-Host-Credential": "wrong"}):
        assert_error(client.post("/agent/v1/hosts", json={"host": body}, headers=bad), 401)
        assert_error(client.post(f"/agent/v1/hosts/{body['id']}/heartbeat", headers=bad), 401)
    assert_error(client.post("/agent/v1/hosts", json={"nohost": 1}, headers=headers), 400)
    assert_error(client.post("/agent/v1/hosts", content=b"{", headers=headers), 400)
    resp = client.post("/agent/v1/hosts", json={"host": body | {"id": "x"}}, headers=headers)
    assert_error(resp, 400)
    resp = client.post(
        "/agent/v1/hosts", json={"host": body | {"agent_api_versions": ["v9"]}}, headers=headers
    )
    assert_error(resp, 400)
    assert client.post("/agent/v1/hosts", json={"host": body}, headers=headers).status_code == 200
    clash = _body("agent-node")
    assert_error(client.post("/agent/v1/hosts", json={"host": clash}, headers=headers), 409)
    resp = client.post(f"/agent/v1/hosts/{uuid.uuid4()}/heartbeat", headers=headers)
    assert_error(resp, 404)


def test_admin_host_list(cloud):
    with cloud.db.session() as s:
        hosts.register(s, _body("listed"))
    resp = cloud.client.get("/kumo/v1/hosts", headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    [row] = resp.json()["hosts"]
    assert (row["name"], row["state"], row["inventory"]["vcpus"]) == ("listed", "up", 8)
    _, token = cloud.member("nonadmin", cloud.boot.demo_project_id)
    assert_error(cloud.client.get("/kumo/v1/hosts", headers=cloud.h(token)), 403)


# Database checks -----------------------------------------------------------------------


def test_db_checks_find_and_repair(database):
    with database.session() as s:
        s.add(m.Domain(id="default", name="Default"))
        s.add(m.Role(id="r1", name="member"))
        s.add(m.Project(id="p1", name="p", domain_id="default"))
        s.add(m.User(id="u1", name="u", domain_id="default", default_project_id="gone-project"))
        s.add(m.User(id="u2", name="ok", domain_id="default", default_project_id="p1"))
        s.flush()
        s.add(
            m.RoleAssignment(
                actor_type="user",
                actor_id="u2",
                target_type="project",
                target_id="p1",
                role_id="r1",
                inherited=False,
            )
        )
        s.add(
            m.RoleAssignment(
                actor_type="user",
                actor_id="ghost",
                target_type="project",
                target_id="p1",
                role_id="r1",
                inherited=False,
            )
        )
    with database.session() as s:
        problems = checks.run_checks(s)
    by_check = {}
    for p in problems:
        by_check.setdefault(p.check, []).append(p)
    assert set(by_check) == {"orphaned role assignments", "users with a missing default project"}
    assert len(by_check["orphaned role assignments"]) == 1
    assert "ghost" in by_check["orphaned role assignments"][0].detail
    assert "gone-project" in by_check["users with a missing default project"][0].detail
    assert all(p.repairable for p in problems)

    with database.session() as s:
        assert len(checks.run_checks(s, repair=True)) == 2
    with database.session() as s:
        assert checks.run_checks(s) == []
        assert s.get(m.User, "u1").default_project_id is None
        assert s.get(m.User, "u2").default_project_id == "p1"
        remaining = [(ra.actor_id, ra.target_id) for ra in s.query(m.RoleAssignment)]
        assert remaining == [("u2", "p1")]


def test_db_checks_clean_cloud(cloud):
    with cloud.db.session() as s:
        assert checks.run_checks(s) == []

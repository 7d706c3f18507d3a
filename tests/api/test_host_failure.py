"""Host failure (kumo.core.ha, kumo.controller.host_failure) between two fake hosts, each
with its agent loop, on every database backend: a host whose heartbeat stops is suspected,
declared dead, forced down, fenced (a fence command's answer, or the agent's self-fence
deadline), then its HA_Enabled servers are evacuated and the others left ERROR with a
fault; the host that comes back destroys what moved and keeps the rest off. Each pass is
run by a new HostFailures object: the state is the database's, as after a controller
restart."""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_evacuate_migrate import Evac
from test_servers import SERVERS

from kumo.config import Config, HaConfig, HostsConfig
from kumo.controller.host_failure import HostFailures
from kumo.core import ha, hosts
from kumo.db import models as m
from kumo.db.ha_tables import HostFailure
from kumo.db.types import utcnow

HA_META = {"metadata": {ha.HA_KEY: "True"}}


class Failover(Evac):
    fenced_hosts: list[str]

    def two_servers(self) -> tuple[str, str, str, str]:
        """An HA_Enabled server and a plain one, both on the same host: (ha, plain, that
        host, the other host)."""
        with self.db.session() as session:
            hosts.set_enabled(session, self.host2, False, "test")
        ha_id = self.create(self.cloud.admin, **HA_META).json()["server"]["id"]
        plain = self.create(self.cloud.admin).json()["server"]["id"]
        self.converge()
        with self.db.session() as session:
            hosts.set_enabled(session, self.host2, True)
        for server_id in (ha_id, plain):
            assert self.show(server_id, self.cloud.admin)["status"] == "ACTIVE"
        return ha_id, plain, self.host_id, self.host2

    def silence(self, host_id: str, seconds: float) -> None:
        """The host's last heartbeat was ``seconds`` ago."""
        with self.db.session() as session:
            session.get(m.Host, host_id).last_heartbeat_at = utcnow() - dt.timedelta(
                seconds=seconds
            )

    def heartbeat(self, host_id: str) -> None:
        resp = self.agent_client.post(f"/agent/v1/hosts/{host_id}/heartbeat", json={})
        assert resp.status_code == 200, resp.text

    def passes(self, config: Config, count: int = 1, fence_ok: bool = True) -> None:
        def fence(cfg: HaConfig, name: str, host_id: str) -> tuple[bool, str]:
            self.fenced_hosts.append(name)
            return (True, "powered off") if fence_ok else (False, "BMC unreachable")

        for _ in range(count):  # a new one each time: no memory but the database's
            HostFailures(self.db, config, fence, background=False).step()

    def failure(self, host_id: str) -> HostFailure:
        with self.db.session() as session:
            row = (
                session.query(HostFailure)
                .filter_by(host_id=host_id)
                .order_by(HostFailure.created_at.desc())
                .first()
            )
            assert row is not None
            session.expunge(row)
            return row

    def steps(self, host_id: str) -> list[str]:
        with self.db.session() as session:
            return [e.step for e in ha.events(session, host_id)]

    def actions(self, server_id: str) -> list[dict[str, Any]]:
        resp = self.client.get(
            f"{SERVERS}/{server_id}/os-instance-actions", headers=self.cloud.admin
        )
        assert resp.status_code == 200, resp.text
        return list(resp.json()["instanceActions"])


def config(**ha_settings: Any) -> Config:
    return Config(
        hosts=HostsConfig(heartbeat_timeout=30.0),
        ha=HaConfig(enabled=True, dead_after=60.0, **ha_settings),
    )


@pytest.fixture
def fo(cloud: Any, tmp_path: Path) -> Failover:
    failover = Failover(cloud, tmp_path)
    failover.fenced_hosts = []
    return failover


def test_fenced_host_ha_servers_evacuated_others_error(fo: Failover) -> None:
    ha_id, plain, dead, alive = fo.two_servers()
    cfg = config(fence_command="fence-it {host}")
    fo.silence(dead, 100)
    fo.passes(cfg)
    assert fo.failure(dead).state == ha.FENCING
    with fo.db.session() as session:
        assert session.get(m.Host, dead).forced_down
    fo.passes(cfg)
    assert fo.fenced_hosts == ["fake-1"]
    assert fo.failure(dead).state == ha.EVACUATING
    fo.passes(cfg)
    row = fo.failure(dead)
    assert row.state == ha.DONE and row.ended_at is not None
    assert row.servers[ha_id] == ha.EVACUATED and row.servers[plain].startswith(ha.LEFT)
    assert fo.steps(dead) == ["suspected", "forced_down", "fenced", "done"]

    fo.only(alive)
    shown = fo.show(ha_id, fo.cloud.admin)
    assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "fake-2")
    assert fo.loops[alive].driver.get_state(ha_id).power_state == "running"
    left = fo.show(plain, fo.cloud.admin)
    assert (left["status"], left["OS-EXT-SRV-ATTR:host"]) == ("ERROR", "fake-1")
    assert "fake-1 failed" in left["fault"]["message"]
    assert ha.HA_KEY in left["fault"]["details"]
    assert fo.actions(ha_id)[0]["action"] == "evacuate"
    action = fo.actions(plain)[0]
    assert action["action"] == ha.ACTION and action["user_id"] == "kumo-ha"
    fo.check_clean()

    resp = fo.client.get("/kumo/v1/host-failures?host=fake-1", headers=fo.cloud.admin)
    assert resp.status_code == 200, resp.text
    (listed,) = resp.json()["host_failures"]
    assert (listed["host"], listed["state"], listed["ended_at"] is not None) == (
        "fake-1",
        "done",
        True,
    )
    assert [e["step"] for e in listed["events"]] == ["suspected", "forced_down", "fenced", "done"]
    assert listed["servers"][ha_id] == ha.EVACUATED
    assert fo.client.get("/kumo/v1/host-failures", headers=fo.cloud.admin).status_code == 200
    missing = fo.client.get("/kumo/v1/host-failures?host=nope", headers=fo.cloud.admin)
    assert missing.status_code == 404, missing.text
    _, token = fo.cloud.member("ha-reader", fo.cloud.boot.demo_project_id)
    denied = fo.client.get("/kumo/v1/host-failures", headers=fo.cloud.h(token))
    assert denied.status_code == 403, denied.text

    # More passes change nothing: the failure is over, the host stays forced down.
    fo.passes(cfg, 2)
    assert fo.failure(dead).id == row.id
    # The host comes back: the evacuated guest is destroyed, never restarted; the other
    # stays off (its desired state is stopped) and reads SHUTOFF once the host says so.
    fo.heartbeat(dead)
    for _ in range(3):
        fo.loops[dead].sync_once()
    dead_driver = fo.loops[dead].driver
    assert dead_driver.get_state(ha_id).power_state == "nostate"
    assert dead_driver.get_state(plain).power_state == "shutdown"
    assert fo.show(plain, fo.cloud.admin)["status"] == "SHUTOFF"
    assert fo.migration(ha_id).status == "completed"
    fo.passes(cfg, 2)  # a fresh heartbeat: no new failure
    assert fo.failure(dead).id == row.id
    fo.check_clean()


def test_fence_failure_is_retried_and_nothing_moves_meanwhile(fo: Failover) -> None:
    ha_id, plain, dead, _ = fo.two_servers()
    cfg = config(fence_command="fence-it", fence_retry_interval=30.0)
    fo.silence(dead, 100)
    fo.passes(cfg, 3, fence_ok=False)
    row = fo.failure(dead)
    assert (row.state, row.fence_attempts) == (ha.FENCING, 1)  # the retry waits its turn
    assert fo.steps(dead)[-1] == "fence_failed"
    assert fo.show(ha_id, fo.cloud.admin)["OS-EXT-SRV-ATTR:host"] == "fake-1"
    assert fo.show(plain, fo.cloud.admin)["status"] == "ACTIVE"
    with fo.db.session() as session:
        session.get(HostFailure, row.id).next_step_at = utcnow()
    fo.passes(cfg, 2)
    assert fo.failure(dead).state == ha.DONE
    assert fo.show(ha_id, fo.cloud.admin)["OS-EXT-SRV-ATTR:host"] == "fake-2"


def test_self_fencing_waits_for_the_agents_deadline(fo: Failover) -> None:
    ha_id, plain, dead, _ = fo.two_servers()
    cfg = config(self_fence_after=30.0, self_fence_margin=60.0)
    fo.silence(dead, 70)
    fo.passes(cfg, 2)
    row = fo.failure(dead)
    assert row.state == ha.AWAITING_SELF_FENCE  # the deadline is 90 s after the heartbeat
    assert row.next_step_at is not None and row.next_step_at > utcnow()
    assert fo.fenced_hosts == []
    assert fo.show(ha_id, fo.cloud.admin)["OS-EXT-SRV-ATTR:host"] == "fake-1"
    fo.silence(dead, 95)  # time passes (the deadline was recorded already)
    with fo.db.session() as session:
        session.get(HostFailure, row.id).next_step_at = utcnow() - dt.timedelta(seconds=1)
    fo.passes(cfg, 2)
    assert fo.failure(dead).state == ha.DONE
    assert fo.steps(dead) == ["suspected", "forced_down", "awaiting_self_fence", "fenced", "done"]
    assert fo.show(ha_id, fo.cloud.admin)["OS-EXT-SRV-ATTR:host"] == "fake-2"
    assert fo.show(plain, fo.cloud.admin)["status"] == "ERROR"


def test_heartbeat_back_before_the_deadline_recovers(fo: Failover) -> None:
    ha_id, _, dead, _ = fo.two_servers()
    cfg = config(self_fence_after=30.0, self_fence_margin=60.0)
    fo.silence(dead, 70)
    fo.passes(cfg)
    assert fo.failure(dead).state == ha.AWAITING_SELF_FENCE
    fo.heartbeat(dead)
    fo.passes(cfg)
    row = fo.failure(dead)
    assert row.state == ha.RECOVERED
    with fo.db.session() as session:
        assert not session.get(m.Host, dead).forced_down  # it set the flag: it clears it
    assert fo.show(ha_id, fo.cloud.admin)["OS-EXT-SRV-ATTR:host"] == "fake-1"
    # Merely suspected, then back: recovered, never forced down.
    fo.silence(dead, 40)
    fo.passes(cfg)
    assert fo.failure(dead).state == ha.SUSPECTED
    fo.heartbeat(dead)
    fo.passes(cfg)
    assert fo.failure(dead).state == ha.RECOVERED
    assert fo.steps(dead)[-2:] == ["suspected", "recovered"]
    fo.check_clean()


def test_without_fencing_nothing_is_evacuated(fo: Failover) -> None:
    ha_id, plain, dead, _ = fo.two_servers()
    cfg = config()
    fo.silence(dead, 100)
    fo.passes(cfg, 2)
    assert fo.failure(dead).state == ha.UNFENCED
    for server_id in (ha_id, plain):
        shown = fo.show(server_id, fo.cloud.admin)
        assert (shown["status"], shown["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "fake-1")
    assert fo.steps(dead) == ["suspected", "forced_down", "unfenced"]
    assert fo.failure(dead).ended_at is not None
    fo.passes(cfg, 2)  # the same silence opens no second failure
    assert fo.steps(dead) == ["suspected", "forced_down", "unfenced"]


def test_storage_lease_alive_means_not_dead(fo: Failover, tmp_path: Path) -> None:
    _, _, dead, _ = fo.two_servers()
    leases = tmp_path / "leases"
    leases.mkdir()
    lease = leases / dead
    lease.touch()
    cfg = config(fence_command="fence-it", lease_dir=str(leases))
    fo.silence(dead, 100)
    fo.passes(cfg, 2)
    assert fo.failure(dead).state == ha.SUSPECTED  # cut off from the API, alive on disk
    old = time.time() - 100
    os.utime(lease, (old, old))
    fo.passes(cfg, 3)
    assert fo.failure(dead).state == ha.DONE
    assert fo.fenced_hosts == ["fake-1"]
    with fo.db.session() as session:
        (declared,) = [e for e in ha.events(session, dead) if e.step == "forced_down"]
        assert "no storage lease renewal" in declared.message


def test_disabled_by_default_does_nothing(fo: Failover) -> None:
    fo.two_servers()
    fo.silence(fo.host_id, 1000)
    HostFailures(fo.db, Config()).step()
    with fo.db.session() as session:
        assert session.query(HostFailure).count() == 0


def test_stopped_plain_server_stays_shutoff_and_fencing_runs_aside(fo: Failover) -> None:
    ha_id, plain, dead, _ = fo.two_servers()
    assert fo.action(plain, fo.cloud.admin, {"os-stop": None}).status_code == 202
    fo.converge()
    assert fo.show(plain, fo.cloud.admin)["status"] == "SHUTOFF"
    fo.silence(dead, 100)
    answered = threading.Event()

    def fence(cfg: HaConfig, name: str, host_id: str) -> tuple[bool, str]:
        answered.wait(30)  # a slow BMC: the controller's pass does not wait for it
        return True, "powered off"

    controller = HostFailures(fo.db, config(fence_command="fence-it"), fence)
    controller.step()
    controller.step()  # starts the fence command on its thread and returns
    assert fo.failure(dead).state == ha.FENCING
    controller.step()  # one command at a time per failure
    assert len(controller._fencing) == 1
    answered.set()
    for thread in list(controller._fencing.values()):
        thread.join(30)
    assert fo.failure(dead).state == ha.EVACUATING
    controller.step()
    row = fo.failure(dead)
    assert row.state == ha.DONE and row.servers[plain].startswith(ha.LEFT)
    shown = fo.show(plain, fo.cloud.admin)
    assert (shown["status"], shown.get("fault")) == ("SHUTOFF", None)
    assert fo.actions(plain)[0]["action"] == ha.ACTION
    assert fo.show(ha_id, fo.cloud.admin)["OS-EXT-SRV-ATTR:host"] == "fake-2"

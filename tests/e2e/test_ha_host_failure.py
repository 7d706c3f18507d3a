"""Host failure end to end (issue 16, "Done when" 2, fake hypervisor): `kumo up` (API,
controller and the local agent "local-fake") plus two `kumo serve agent` processes, each
a host of its own, all on the fake driver (its guests live in the agent's process, so
freezing or killing the agent freezes or kills them too, as a power cut would).

- Fence command: freeze one host (SIGSTOP its process group); the controller declares it
  dead, runs the fence command (a script that SIGKILLs the frozen group: the power
  switch), and only then evacuates its HA_Enabled servers, which run on the other hosts
  within 90 s; the others are ERROR with a fault. The host "reboots" (its agent starts
  again on the same state directory): nothing of what moved runs there again, the plain
  server stays off, `kumo db check` is clean.
- Self-fencing: no fence command; one host is cut off from the API (its agent reaches it
  through a TCP proxy the test drops). The agent stops its guests after self_fence_after
  (it says when, in STATE_DIR/agent/self-fenced), before the controller's deadline; its
  HA_Enabled servers are evacuated after that; reconnected, it destroys them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tcpproxy import TcpProxy

from computeapi import Api, db_check, kill_leftovers, start_agent
from kumoproc import Cloud, clean_env, start_cloud, wait_for

SERVERS = "/compute/v2.1/servers"
FAILOVER_DEADLINE = 90.0  # the issue's: HA servers run elsewhere within 90 s
V = {"X-OpenStack-Nova-API-Version": "2.23"}
FAKE = {"KUMO_COMPUTE_HYPERVISOR": "fake"}
# Generous on a loaded 2-core machine: a live host must never look dead.
HA_ENV = {
    "KUMO_HA_ENABLED": "true",
    "KUMO_HOSTS_HEARTBEAT_TIMEOUT": "10",
    "KUMO_HA_DEAD_AFTER": "15",
    "KUMO_HA_FENCE_TIMEOUT": "20",
    "KUMO_HA_FENCE_RETRY_INTERVAL": "2",
}
FENCE_SCRIPT = """#!/bin/bash
# The power switch of the test's hosts: SIGKILL of the host's process group.
pids="{pids}"
[ -f "$pids/$1" ] || {{ echo "no such host $1"; exit 3; }}
kill -KILL -- "-$(cat "$pids/$1")" || exit 4
date -u +%s.%N >> "$pids/$1.fenced"
echo "powered off $1"
"""


@dataclass
class HaCloud:
    root: Path
    cloud: Cloud
    api: Api
    env: dict[str, str]
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    proxies: dict[str, TcpProxy] = field(default_factory=dict)

    def start_agent(self, name: str, via_proxy: bool = False) -> subprocess.Popen[bytes]:
        url = self.cloud.url
        if via_proxy:
            port = int(url.rsplit(":", 1)[1])
            self.proxies[name] = proxy = TcpProxy(port)
            url = f"http://127.0.0.1:{proxy.port}"
        agent = start_agent(
            self.root / f"{name}-state",
            url,
            self.cloud.state_dir / "host-credential",
            name,
            self.root / f"{name}.log",
            **FAKE,
            **self.env,
        )
        self.agents[name] = agent
        (self.root / "pids").mkdir(exist_ok=True)
        (self.root / "pids" / name).write_text(f"{agent.pid}\n")
        return agent

    def wait_up(self, names: set[str]) -> None:
        def up() -> bool:
            live = {h["hypervisor_hostname"] for h in self.api.hypervisors() if h["state"] == "up"}
            return names <= live

        wait_for(up, 60, f"hosts {sorted(names)} up (logs in {self.root})")

    def create(self, name: str, host: str, ha: bool) -> str:
        body: dict[str, Any] = {
            "name": name,
            "imageRef": self.api.image_id(),
            "flavorRef": "1",
            "availability_zone": f"nova:{host}",
        }
        if ha:
            body["metadata"] = {"HA_Enabled": "True"}
        resp = self.api.client.post(SERVERS, json={"server": body})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["server"]["id"])

    def evacuations(self, every: bool = False) -> dict[Any, dict[str, Any]]:
        """The latest evacuation of each server, or (every) each one by its id."""
        resp = self.api.client.get(
            "/compute/v2.1/os-migrations", params={"migration_type": "evacuation"}, headers=V
        )
        assert resp.status_code == 200, resp.text
        rows = sorted(resp.json()["migrations"], key=lambda m: m["id"])
        return {(m["id"] if every else m["instance_uuid"]): m for m in rows}

    def logs(self) -> str:
        return (
            "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                for p in sorted(self.root.glob("*.log"))
            )
            + f"\n--- kumo up\n{self.cloud.output()[-4000:]}"
        )


@contextlib.contextmanager
def ha_cloud(root: Path, **ha_env: str) -> Iterator[HaCloud]:
    env = {**HA_ENV, **ha_env}
    cloud = start_cloud(
        root / "state", env=clean_env(KUMO_AGENT_HOST_NAME="local-fake", **FAKE, **env)
    )
    api = Api(cloud.url, cloud.admin_password)
    running = HaCloud(root, cloud, api, env)
    try:
        yield running
    finally:
        for proxy in running.proxies.values():
            proxy.close()
        for agent in running.agents.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(agent.pid, signal.SIGCONT)
            kill_leftovers(agent)
        api.close()
        cloud.stop()


def _utc(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC).timestamp()


def _failover(hc: HaCloud, ha_ids: list[str], plain: str, dead: str) -> dict[str, dict[str, Any]]:
    """Wait for the HA servers ACTIVE on other hosts and the plain one ERROR; return them."""

    def done() -> dict[str, dict[str, Any]] | None:
        shown = {s["id"]: s for s in hc.api.servers()}
        moved = all(
            shown[i]["status"] == "ACTIVE"
            and shown[i]["OS-EXT-SRV-ATTR:host"] not in (dead, None)
            and shown[i].get("OS-EXT-STS:task_state") is None
            for i in ha_ids
        )
        return shown if moved and shown[plain]["status"] == "ERROR" else None

    return wait_for(done, FAILOVER_DEADLINE, "the failover", interval=0.5, why=hc.logs)


def test_frozen_host_is_fenced_then_its_ha_servers_run_elsewhere(tmp_path: Path) -> None:
    script = tmp_path / "fence.sh"
    script.write_text(FENCE_SCRIPT.format(pids=tmp_path / "pids"))
    script.chmod(0o755)
    with ha_cloud(tmp_path, KUMO_HA_FENCE_COMMAND=f"{script} {{host}}") as hc:
        for name in ("fake-1", "fake-2"):
            hc.start_agent(name)
        hc.wait_up({"local-fake", "fake-1", "fake-2"})
        ha_ids = [hc.create(f"ha-{i}", "fake-1", ha=True) for i in range(2)]
        plain = hc.create("plain", "fake-1", ha=False)
        other = hc.create("bystander", "fake-2", ha=False)
        hc.api.wait_settled([*ha_ids, plain, other], 60, frozenset({"ACTIVE"}))

        victim = hc.agents["fake-1"]
        os.killpg(victim.pid, signal.SIGSTOP)  # the power cut: agent and guests freeze
        shown = _failover(hc, ha_ids, plain, "fake-1")

        # Fenced before anything moved: the frozen group was killed, then the evacuations.
        assert victim.wait(10) == -signal.SIGKILL
        fenced_at = float((tmp_path / "pids" / "fake-1.fenced").read_text().split()[0])
        evacuations = hc.evacuations()
        for server_id in ha_ids:
            assert _utc(evacuations[server_id]["created_at"]) >= fenced_at - 1.0
            assert evacuations[server_id]["source_compute"] == "fake-1"
        fault = shown[plain]["fault"]
        assert "fake-1 failed" in fault["message"], fault
        assert shown[plain]["OS-EXT-SRV-ATTR:host"] == "fake-1"
        assert shown[other]["status"] == "ACTIVE"  # another host's servers are untouched

        # The host comes back (rebooted: the fake guests died with their process).
        hc.start_agent("fake-1")

        def cleaned() -> bool:
            rows = hc.evacuations()
            return all(rows[i]["status"] == "completed" for i in ha_ids)

        wait_for(cleaned, 60, "the returned host's cleanup", why=hc.logs)
        after = {s["id"]: s for s in hc.api.servers()}
        for server_id in ha_ids:
            assert after[server_id]["status"] == "ACTIVE"
            assert after[server_id]["OS-EXT-SRV-ATTR:host"] != "fake-1"
        assert after[plain]["status"] in ("ERROR", "SHUTOFF")
        services = hc.api.client.get(
            "/compute/v2.1/os-services", headers={"X-OpenStack-Nova-API-Version": "2.11"}
        ).json()["services"]
        (service,) = [s for s in services if s["host"] == "fake-1"]
        assert service["forced_down"] is True  # until an operator clears it
        db_check(hc.cloud.state_dir)


def test_cut_off_host_fences_itself_before_its_servers_move(tmp_path: Path) -> None:
    with ha_cloud(tmp_path, KUMO_HA_SELF_FENCE_AFTER="8", KUMO_HA_SELF_FENCE_MARGIN="10") as hc:
        hc.start_agent("fake-1", via_proxy=True)
        hc.start_agent("fake-2")
        hc.wait_up({"local-fake", "fake-1", "fake-2"})
        ha_id = hc.create("ha", "fake-1", ha=True)
        plain = hc.create("plain", "fake-1", ha=False)
        hc.api.wait_settled([ha_id, plain], 60, frozenset({"ACTIVE"}))

        hc.proxies["fake-1"].drop()  # cut off from the API; alive otherwise
        shown = _failover(hc, [ha_id], plain, "fake-1")
        marker = tmp_path / "fake-1-state" / "agent" / "self-fenced"
        record = json.loads(marker.read_text())
        assert set(record["stopped"]) == {ha_id, plain}
        moved_at = _utc(hc.evacuations()[ha_id]["created_at"])
        assert record["at"] < moved_at, (record, moved_at)
        assert "not evacuated" in shown[plain]["fault"]["message"]

        hc.proxies["fake-1"].restore()

        def cleaned() -> bool:
            return bool(hc.evacuations()[ha_id]["status"] == "completed")

        wait_for(cleaned, 60, "the reconnected host's cleanup", why=hc.logs)
        after = hc.api.server(plain)
        wait_for(
            lambda: hc.api.server(plain)["status"] == "SHUTOFF",
            60,
            "the plain server SHUTOFF on its returned host",
            why=hc.logs,
        )
        assert after["OS-EXT-SRV-ATTR:host"] == "fake-1"
        assert hc.api.server(ha_id)["OS-EXT-SRV-ATTR:host"] != "fake-1"
        db_check(hc.cloud.state_dir)


# `make test` runs 5 freezes (CI's time budget); `make ha-proof` runs the 20.
ROUNDS = int(os.environ.get("KUMO_HA_ROUNDS", "5"))


@pytest.mark.slow
def test_random_freezes_no_double_run_no_lost_server(tmp_path: Path) -> None:
    """Freeze fake-1 or fake-2 at random moments for random times, ROUNDS times in one run:
    a short freeze is survived (nothing moves), a long one is fenced then failed over; the
    host reboots and an operator clears its forced-down flag. Every evacuation starts after
    its source was fenced (0 double runs); every HA server ends ACTIVE (0 lost)."""
    seed = int(os.environ.get("KUMO_HA_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    script = tmp_path / "fence.sh"
    script.write_text(FENCE_SCRIPT.format(pids=tmp_path / "pids"))
    script.chmod(0o755)
    fast = {"KUMO_HOSTS_HEARTBEAT_TIMEOUT": "6", "KUMO_HA_DEAD_AFTER": "8"}
    with ha_cloud(tmp_path, KUMO_HA_FENCE_COMMAND=f"{script} {{host}}", **fast) as hc:
        hosts = ("fake-1", "fake-2")
        for name in hosts:
            hc.start_agent(name)
        hc.wait_up({"local-fake", *hosts})
        ha_ids = [hc.create(f"ha-{i}", hosts[i % 2], ha=True) for i in range(4)]
        plain = [hc.create(f"plain-{name}", name, ha=False) for name in hosts]
        hc.api.wait_settled([*ha_ids, *plain], 60, frozenset({"ACTIVE"}))
        failovers = sum(
            _freeze_round(hc, rng, ha_ids, f"round {n} (seed {seed})") for n in range(ROUNDS)
        )
        shown = {s["id"]: s for s in hc.api.servers()}
        assert {shown[i]["status"] for i in ha_ids} == {"ACTIVE"}, seed
        assert len(shown) == len(ha_ids) + len(plain), seed
        for server_id in plain:
            assert shown[server_id]["status"] in ("ACTIVE", "ERROR", "SHUTOFF"), seed
        print(f"seed {seed}: {failovers} failovers in {ROUNDS} freezes")
        db_check(hc.cloud.state_dir)


def _freeze_round(hc: HaCloud, rng: random.Random, ha_ids: list[str], where: str) -> bool:
    """One freeze of a random host; True when it was fenced and failed over."""
    victim = rng.choice(("fake-1", "fake-2"))
    agent = hc.agents[victim]
    time.sleep(rng.uniform(0, 3))  # a random moment: not a synchronisation
    before = {row["id"] for row in hc.evacuations(every=True).values()}
    os.killpg(agent.pid, signal.SIGSTOP)
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.2, 4.0))  # shorter than the heartbeat timeout
        thawed = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGCONT)
        # Survived (a heartbeat after the thaw), or fenced all the same (a slow machine).
        wait_for(
            lambda: agent.poll() is not None or _heartbeat(hc, victim) > thawed,
            FAILOVER_DEADLINE,
            f"{victim} heartbeating again or fenced, {where}",
            why=hc.logs,
        )
        if agent.poll() is None:
            after = {row["id"] for row in hc.evacuations(every=True).values()}
            assert after == before, where  # nothing moved
            return False
    wait_for(lambda: agent.poll() is not None, FAILOVER_DEADLINE, f"{victim} fenced, {where}")
    fenced_at = float((hc.root / "pids" / f"{victim}.fenced").read_text().split()[-1])
    _wait_all_active(hc, ha_ids, victim, where)
    for row in hc.evacuations(every=True).values():
        if row["id"] not in before:  # evacuated in this round: only once fenced
            assert row["source_compute"] == victim, (where, row)
            assert _utc(row["created_at"]) >= fenced_at - 1.0, (where, fenced_at, row)
    hc.start_agent(victim)  # rebooted
    wait_for(
        lambda: all(r["status"] == "completed" for r in hc.evacuations(every=True).values()),
        60,
        f"{victim}'s cleanup, {where}",
        why=hc.logs,
    )
    resp = hc.api.client.put(
        "/compute/v2.1/os-services/force-down",
        json={"host": victim, "binary": "nova-compute", "forced_down": False},
        headers={"X-OpenStack-Nova-API-Version": "2.11"},
    )
    assert resp.status_code == 200, resp.text
    wait_for(lambda: _up(hc, victim), 60, f"{victim} up again, {where}")
    return True


def _heartbeat(hc: HaCloud, name: str) -> float:
    """The host's last heartbeat (os-services updated_at), as a UNIX time; 0: none."""
    resp = hc.api.client.get("/compute/v2.1/os-services", params={"host": name})
    assert resp.status_code == 200, resp.text
    stamps = [s["updated_at"] for s in resp.json()["services"] if s["updated_at"]]
    return _utc(stamps[0].removesuffix("Z")) if stamps else 0.0


def _up(hc: HaCloud, name: str) -> bool:
    return any(
        h["hypervisor_hostname"] == name and h["state"] == "up" for h in hc.api.hypervisors()
    )


def _wait_all_active(hc: HaCloud, ha_ids: list[str], dead: str, where: str) -> None:
    def done() -> bool:
        shown = {s["id"]: s for s in hc.api.servers()}
        return all(
            shown[i]["status"] == "ACTIVE"
            and shown[i]["OS-EXT-SRV-ATTR:host"] != dead
            and shown[i].get("OS-EXT-STS:task_state") is None
            for i in ha_ids
        )

    wait_for(done, FAILOVER_DEADLINE, f"HA servers off {dead}, {where}", 0.5, why=hc.logs)

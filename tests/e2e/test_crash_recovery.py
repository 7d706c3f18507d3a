"""Crash recovery (issue 3, "Done when" 3): `kill -9` of `kumo up` or of an agent never leaves
a server stuck in BUILD, never leaks an allocation, and never disturbs a running guest.

- kumo up (fake driver) killed right after a burst of creates: after a restart on the same
  state directory every server ends ACTIVE or ERROR with a fault; `kumo db check` is clean.
- the same with the agent frozen (SIGSTOP) so that servers are placed (allocation written)
  but not spawned when kumo up dies: deterministic BUILD/spawning at the kill.
- kumo up (qemu) killed while a guest's qemu is starting: the server ends ACTIVE, run by
  exactly one qemu (the same PID when it survived the kill).
- a separate qemu agent killed while guests run: same PIDs, still ACTIVE, not rebooted.

Every process is stopped by PID in a finalizer; every qemu a test caused is killed by PID,
found by its command line naming the server's UUID.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from computeapi import (
    SETTLED_AFTER_FAKE_RESTART,
    Api,
    Guests,
    assert_settled_with_faults,
    db_check,
    kill9,
    kill_leftovers,
    pidfile,
    qemu_pids,
    require_qemu,
    start_agent,
    wait_file,
)
from kumoproc import Cloud, alive, clean_env, start_cloud, wait_for

SETTLE = 90.0  # fake driver: seconds for every server to leave BUILD after the restart
BOOT = 240.0  # TCG on a busy 2-vCPU machine


def db_states(state_dir: Path) -> dict[str, tuple[str, str | None, str | None]]:
    """vm_state, task_state and host of every server, read from the (SQLite) database."""
    with sqlite3.connect(state_dir / "kumo.db") as conn:
        rows = conn.execute("SELECT id, vm_state, task_state, host_id FROM instances").fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def create_many(api: Api, image_id: str, names: list[str]) -> list[str]:
    with ThreadPoolExecutor(len(names)) as pool:
        responses = list(pool.map(lambda n: api.create_server(n, image_id), names))
    for resp in responses:
        assert resp.status_code == 202, resp.text
    return [str(r.json()["server"]["id"]) for r in responses]


def delete_all(api: Api, ids: list[str]) -> None:
    for server_id in ids:
        api.delete_server(server_id)
    for server_id in ids:
        api.wait_gone(server_id, 120)


def host_up(api: Api, name: str) -> dict[str, Any] | None:
    return next(
        (h for h in api.hypervisors() if h["hypervisor_hostname"] == name and h["state"] == "up"),
        None,
    )


def console_text(api: Api, server_id: str) -> str:
    resp = api.client.post(
        f"/compute/v2.1/servers/{server_id}/action", json={"os-getConsoleOutput": {}}
    )
    return str(resp.json().get("output", "")) if resp.status_code == 200 else ""


# --- kumo up killed, fake driver --------------------------------------------------------
def test_kill_up_after_burst_of_creates_fake(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake", KUMO_HOSTS_HEARTBEAT_TIMEOUT="30")
    first = start_cloud(state, env=env)
    second: Cloud | None = None
    try:
        api = Api(first.url, first.admin_password)
        image = api.image_id()
        ids = create_many(api, image, [f"burst-{i}" for i in range(8)])
        kill9(first.process)  # right after the last 202: some still scheduling or spawning
        api.close()
        before = db_states(state)
        assert set(ids) <= set(before), "an accepted create was lost"

        second = start_cloud(state, env=env)
        api = Api(second.url, second.admin_password)
        settled = api.wait_settled(ids, SETTLE, SETTLED_AFTER_FAKE_RESTART)
        assert_settled_with_faults(settled, SETTLED_AFTER_FAKE_RESTART)
        db_check(state)

        delete_all(api, ids)
        db_check(state)
        for hypervisor in api.hypervisors():
            assert hypervisor["vcpus_used"] == 0, (hypervisor, before)
        api.close()
    finally:
        kill_leftovers(first.process)
        if second is not None:
            second.stop()


def test_kill_up_while_servers_are_placed_but_not_spawned(tmp_path: Path) -> None:
    """The agent is frozen, so placed servers (allocation written, task spawning) wait for
    it when kumo up dies; two more are still being scheduled. Both restart."""
    state, agent_state = tmp_path / "state", tmp_path / "agent-state"
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake", KUMO_HOSTS_HEARTBEAT_TIMEOUT="60")
    agent_env = {"KUMO_COMPUTE_HYPERVISOR": "fake", "KUMO_HOSTS_HEARTBEAT_TIMEOUT": "60"}
    first = start_cloud(state, "--no-agent", env=env)
    second: Cloud | None = None
    agents: list[subprocess.Popen[bytes]] = []
    log = tmp_path / "agent.log"

    def agent() -> subprocess.Popen[bytes]:
        process = start_agent(
            agent_state, first.url if second is None else second.url,
            state / "host-credential", "frozen-host", log, **agent_env,
        )  # fmt: skip
        agents.append(process)
        return process

    try:
        api = Api(first.url, first.admin_password)
        image = api.image_id()
        frozen = agent()
        wait_for(lambda: host_up(api, "frozen-host"), 60, f"agent up ({log})")
        os.kill(frozen.pid, signal.SIGSTOP)

        placed = create_many(api, image, [f"placed-{i}" for i in range(4)])

        def all_placed() -> bool:
            states = {s["id"]: s for s in api.servers()}
            return all(states[i].get("OS-EXT-STS:task_state") == "spawning" for i in placed)

        wait_for(all_placed, 30, "servers placed on the frozen host")
        late = create_many(api, image, ["late-0", "late-1"])
        kill9(first.process)
        kill9(frozen)
        api.close()
        before = db_states(state)
        assert all(before[i][1] == "spawning" and before[i][2] for i in placed), before

        second = start_cloud(state, "--no-agent", env=env)
        agent()
        api = Api(second.url, second.admin_password)
        settled = api.wait_settled(placed + late, SETTLE)
        assert_settled_with_faults(settled)
        # The host was back: nothing had a reason to fail.
        assert {s["status"] for s in settled.values()} == {"ACTIVE"}, settled
        db_check(state)
        delete_all(api, placed + late)
        db_check(state)
        api.close()
    finally:
        for process in agents:
            kill_leftovers(process)
        kill_leftovers(first.process)
        if second is not None:
            second.stop()


# --- kumo up killed while a qemu starts -------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("how", ["pid", "group"])
def test_kill_up_while_qemu_starts(tmp_path: Path, how: str) -> None:
    """``pid``: only kumo up dies; the qemu it was launching daemonizes and must be adopted
    (same PID). ``group``: its process group dies too, the qemu launcher with it; the
    server must still end ACTIVE, booted again."""
    require_qemu()
    state = tmp_path / "state"
    instances = state / "agent" / "instances"
    guests = Guests()
    first = start_cloud(state)
    second: Cloud | None = None
    try:
        api = Api(first.url, first.admin_password)
        resp = api.create_server("midboot", api.image_id())
        assert resp.status_code == 202, resp.text
        server_id = guests.add(resp.json()["server"]["id"])

        def why() -> str:
            try:
                server: Any = api.server(server_id)
            except Exception as exc:  # the API may be what hangs
                server = exc
            return f"server: {server}\nkumo up log (tail):\n{first.output()[-4000:]}"

        if how == "pid":
            # The daemonized qemu writes its pidfile before telling its launcher (which kumo
            # up is waiting for) that it started: kumo up dies while qemu starts.
            wait_file(instances / server_id / "qemu.pid", BOOT, context=why)
            kill9(first.process)
        else:
            # qemu.argv is written right before the qemu command runs.
            wait_file(instances / server_id / "qemu.argv", BOOT, context=why)
            kill_leftovers(first.process)
        api.close()
        time.sleep(2)  # let a surviving qemu finish daemonizing (or die)
        survivors = qemu_pids(server_id)
        assert len(survivors) <= 1, survivors
        if how == "pid":
            assert survivors, "the qemu being started should outlive kumo up"
        if how == "group":  # killed before qemu could even daemonize: never reported
            assert db_states(state)[server_id][0] == "building", db_states(state)

        second = start_cloud(state)
        api = Api(second.url, second.admin_password)
        settled = api.wait_settled([server_id], BOOT)
        assert settled[server_id]["status"] == "ACTIVE", settled
        running = wait_for(lambda: qemu_pids(server_id), 30, "a qemu for the server")
        assert len(running) == 1, f"more than one qemu runs the server: {running}"
        assert pidfile(instances, server_id) == running[0]
        if survivors and alive(survivors[0]):
            assert running == survivors, "a live qemu was not adopted"
        wait_for(
            lambda: "kumo-guest: hostname midboot" in console_text(api, server_id),
            BOOT, "the guest's hostname on its console", interval=2.0,
        )  # fmt: skip
        db_check(state)

        api.delete_server(server_id)
        api.wait_gone(server_id, 120)
        wait_for(lambda: not qemu_pids(server_id), 30, "qemu gone after delete")
        db_check(state)
        api.close()
    finally:
        kill_leftovers(first.process)
        if second is not None:
            second.stop()
        guests.cleanup()


# --- agent killed while guests run ------------------------------------------------------
@pytest.mark.slow
def test_kill_agent_while_guests_run(tmp_path: Path) -> None:
    require_qemu()
    state, agent_state = tmp_path / "state", tmp_path / "agent-state"
    instances = agent_state / "agent" / "instances"
    log = tmp_path / "agent.log"
    guests = Guests()
    cloud = start_cloud(state, "--no-agent")
    agents: list[subprocess.Popen[bytes]] = []

    def agent() -> subprocess.Popen[bytes]:
        process = start_agent(
            agent_state, cloud.url, state / "host-credential", "qemu-host", log,
            KUMO_COMPUTE_HYPERVISOR="qemu",
        )  # fmt: skip
        agents.append(process)
        return process

    try:
        api = Api(cloud.url, cloud.admin_password)
        first = agent()
        wait_for(lambda: host_up(api, "qemu-host"), 120, f"agent up ({log})")
        ids = [guests.add(i) for i in create_many(api, api.image_id(), ["g1", "g2"])]
        settled = api.wait_settled(ids, BOOT)
        assert {s["status"] for s in settled.values()} == {"ACTIVE"}, settled
        for server_id, name in zip(ids, ["g1", "g2"], strict=True):
            path = instances / server_id / "console.log"
            wait_for(
                lambda p=path, n=name: p.exists() and f"kumo-guest: hostname {n}" in p.read_text(),
                BOOT, f"{name} booted ({path})", interval=1.0,
            )  # fmt: skip
        pids = {i: pidfile(instances, i) for i in ids}
        assert all(pids.values()), pids

        kill9(first)
        assert all(alive(pid) for pid in pids.values() if pid), "guests must outlive the agent"
        time.sleep(2)
        agent()
        wait_for(lambda: host_up(api, "qemu-host"), 60, f"agent up again ({log})")
        time.sleep(5)  # the restarted agent's first full pass: adopt and report

        for server_id in ids:
            server = api.server(server_id)
            assert server["status"] == "ACTIVE", server
            assert server["OS-EXT-STS:power_state"] == 1, server
            assert qemu_pids(server_id) == [pids[server_id]], "the guest's qemu changed"
            text = (instances / server_id / "console.log").read_text()
            assert text.count("kumo-guest: start") == 1, f"the guest was restarted:\n{text}"
        db_check(state)

        # The adopted guests obey the new agent: deleting one stops exactly its qemu.
        api.delete_server(ids[1])
        api.wait_gone(ids[1], 120)
        wait_for(lambda: not qemu_pids(ids[1]), 30, "qemu of the deleted guest gone")
        assert qemu_pids(ids[0]) == [pids[ids[0]]]
        db_check(state)
        api.close()
    finally:
        for process in agents:
            kill_leftovers(process)
        cloud.stop()
        guests.cleanup()

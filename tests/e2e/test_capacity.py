"""Capacity and quota under concurrency (issue 3, "Done when" 4).

`kumo up` with its local agent plus two `kumo serve agent` processes, all on the fake driver,
each reporting a small inventory ([agent] inventory_* settings) so that the cloud holds
exactly 10 m1.tiny (128 MiB): RAM is the binding resource, with 64 MiB reserved per host and
a RAM allocation ratio of 2, (320 - 64) x 2 = 512 MiB = 4 servers on the local host and
(256 - 64) x 2 = 384 MiB = 3 on each of the others. 20 concurrent creates: exactly 10 ACTIVE,
10 ERROR with a "No valid host" fault, and no host ever above its capacity x ratio.

Quota: a project limited to 2 instances creating 3 at once gets exactly 2; the third is a 403
with Nova's message.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from computeapi import Api, db_check, kill_leftovers, start_agent
from kumoproc import Cloud, clean_env, start_cloud, wait_for

RESERVED_MB = 64
RAM_RATIO = 2.0
CPU_RATIO = 4.0
TINY_MB = 128
# host name -> (vCPUs, MiB of RAM) reported; RAM holds 4 + 3 + 3 = 10 m1.tiny, vCPUs 40.
HOSTS = {"local-fake": (10, 320), "fake-1": (10, 256), "fake-2": (10, 256)}
CAPACITY = 10


@dataclass
class Capacity:
    cloud: Cloud
    agents: list[subprocess.Popen[bytes]]


def inventory_env(vcpus: int, memory_mb: int) -> dict[str, str]:
    return {
        "KUMO_COMPUTE_HYPERVISOR": "fake",
        "KUMO_AGENT_INVENTORY_VCPUS": str(vcpus),
        "KUMO_AGENT_INVENTORY_MEMORY_MB": str(memory_mb),
        "KUMO_AGENT_INVENTORY_DISK_GB": "100",
    }


@pytest.fixture(scope="module")
def small_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Capacity]:
    root = tmp_path_factory.mktemp("capacity")
    state = root / "state"
    vcpus, memory = HOSTS["local-fake"]
    env = clean_env(
        KUMO_AGENT_HOST_NAME="local-fake",
        KUMO_HOSTS_HEARTBEAT_TIMEOUT="60",  # a busy machine must not see hosts go down
        KUMO_SCHEDULER_RESERVED_HOST_MEMORY_MB=str(RESERVED_MB),
        KUMO_SCHEDULER_RAM_ALLOCATION_RATIO=str(RAM_RATIO),
        KUMO_SCHEDULER_CPU_ALLOCATION_RATIO=str(CPU_RATIO),
        **inventory_env(vcpus, memory),
    )
    cloud = start_cloud(state, env=env)
    agents: list[subprocess.Popen[bytes]] = []
    try:
        for name, (vcpus, memory) in HOSTS.items():
            if name == "local-fake":
                continue
            agents.append(
                start_agent(
                    root / f"{name}-state", cloud.url, state / "host-credential", name,
                    root / f"{name}.log", **inventory_env(vcpus, memory),
                )
            )  # fmt: skip
        api = Api(cloud.url, cloud.admin_password)

        def all_up() -> bool:
            up = {h["hypervisor_hostname"] for h in api.hypervisors() if h["state"] == "up"}
            return up == set(HOSTS)

        wait_for(all_up, 60, f"hosts {sorted(HOSTS)} up (logs in {root})")
        api.close()
        yield Capacity(cloud, agents)
    finally:
        for agent in agents:
            kill_leftovers(agent)
        cloud.stop()


def check_capacity(api: Api) -> dict[str, dict[str, Any]]:
    """No host holds more than its capacity x ratio, in any resource."""
    hypervisors = {h["hypervisor_hostname"]: h for h in api.hypervisors()}
    assert set(hypervisors) == set(HOSTS), hypervisors
    for name, h in hypervisors.items():
        vcpus, memory = HOSTS[name]
        assert h["vcpus"] == vcpus and h["memory_mb"] == memory, h  # the inventory override
        assert h["vcpus_used"] <= h["vcpus"] * CPU_RATIO, h
        # memory_mb_used counts the reserved memory, as Nova's does.
        allocated = h["memory_mb_used"] - RESERVED_MB
        assert allocated <= (h["memory_mb"] - RESERVED_MB) * RAM_RATIO, h
        assert h["local_gb_used"] <= h["local_gb"], h
    return hypervisors


def test_twenty_concurrent_creates_for_ten_places(small_cloud: Capacity) -> None:
    cloud = small_cloud.cloud
    api = Api(cloud.url, cloud.admin_password)
    api.set_quota(api.project_id(), instances=100, cores=200, ram=100_000)
    image = api.image_id()
    check_capacity(api)

    def create(index: int) -> httpx.Response:
        # One client per thread: concurrent requests, not one connection taking turns.
        with httpx.Client(base_url=cloud.url, timeout=120, headers=api.client.headers) as c:
            body = {"server": {"name": f"cap-{index}", "imageRef": image, "flavorRef": "1"}}
            return c.post("/compute/v2.1/servers", json=body)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(create, range(20)))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    ids = [str(r.json()["server"]["id"]) for r in responses]

    # Checked while the servers settle too: the claim is atomic, so never above, at any time.
    def settled() -> dict[str, dict[str, Any]] | None:
        check_capacity(api)
        shown = {s["id"]: s for s in api.servers() if s["id"] in ids}
        done = all(
            s["status"] in ("ACTIVE", "ERROR") and s.get("OS-EXT-STS:task_state") is None
            for s in shown.values()
        )
        return shown if len(shown) == len(ids) and done else None

    servers = wait_for(settled, 120, "20 servers ACTIVE or ERROR", interval=0.5)
    statuses = Counter(s["status"] for s in servers.values())
    assert statuses == {"ACTIVE": CAPACITY, "ERROR": 20 - CAPACITY}, statuses
    for server in servers.values():
        if server["status"] == "ERROR":
            assert "No valid host" in (server.get("fault") or {}).get("message", ""), server
            assert server.get("OS-EXT-SRV-ATTR:host") in (None, ""), server

    hypervisors = check_capacity(api)
    for name, h in hypervisors.items():
        # Exactly full: every host took as many as fit, no more.
        fits = int((HOSTS[name][1] - RESERVED_MB) * RAM_RATIO) // TINY_MB
        assert h["running_vms"] == fits, (name, h)
        assert h["memory_mb_used"] - RESERVED_MB == fits * TINY_MB, (name, h)
    db_check(cloud.state_dir)

    for server_id in ids:
        api.delete_server(server_id)
    for server_id in ids:
        api.wait_gone(server_id, 120)
    for h in check_capacity(api).values():
        assert h["vcpus_used"] == 0 and h["memory_mb_used"] == RESERVED_MB, h
    db_check(cloud.state_dir)
    api.close()


def admin_create(api: Api, collection: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = api.client.post(f"/identity/v3/{collection}", json={key: body})
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()[key]
    return created


def test_quota_race_creates_exactly_the_limit(small_cloud: Capacity) -> None:
    cloud = small_cloud.cloud
    admin = Api(cloud.url, cloud.admin_password)
    image = admin.image_id()
    project = admin_create(
        admin, "projects", "project", {"name": "quota-2", "domain_id": "default"}
    )
    user = admin_create(
        admin, "users", "user",
        {"name": "quota-user", "password": "quota-pw-1", "domain_id": "default"},
    )  # fmt: skip
    roles = admin.client.get("/identity/v3/roles", params={"name": "member"}).json()["roles"]
    granted = admin.client.put(
        f"/identity/v3/projects/{project['id']}/users/{user['id']}/roles/{roles[0]['id']}"
    )
    assert granted.status_code == 204, granted.text
    admin.set_quota(project["id"], instances=2)
    member = Api(cloud.url, "quota-pw-1", user="quota-user", project="quota-2")

    def create(index: int) -> httpx.Response:
        with httpx.Client(base_url=cloud.url, timeout=120, headers=member.client.headers) as c:
            body = {"server": {"name": f"q-{index}", "imageRef": image, "flavorRef": "1"}}
            return c.post("/compute/v2.1/servers", json=body)

    with ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(create, range(3)))
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 202, 403], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 403)
    assert refused.json() == {
        "forbidden": {
            "code": 403,
            "message": "Quota exceeded for instances: Requested 1, but already used 2 of 2 "
            "instances",
        }
    }, refused.text
    servers = member.servers()
    assert len(servers) == 2, servers
    assert {s["id"] for s in servers} == {
        r.json()["server"]["id"] for r in responses if r.status_code == 202
    }
    used = member.client.get("/compute/v2.1/limits").json()["limits"]["absolute"]
    assert used["totalInstancesUsed"] == 2, used

    for server in servers:
        member.delete_server(server["id"])
    for server in servers:
        member.wait_gone(server["id"], 120)
    db_check(cloud.state_dir)
    member.close()
    admin.close()

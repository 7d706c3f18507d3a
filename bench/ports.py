"""Network benchmark (issue 4, "Done when" 8): port creation through the Neutron API on a
real ``kumo up``, and IPAM correctness under concurrent clients.

For each backend (SQLite, PostgreSQL) the script starts its own cloud (``kumo up`` in a
temporary state directory; for PostgreSQL a throwaway database, dropped afterwards), takes
a project-scoped admin token, makes the admin project's port quota unlimited and then, over
HTTP with one httpx client (one connection) per thread:

* ``race``: a shared network with one /24 subnet; ``--clients`` (16) threads create ports
  until the subnet is exhausted. Every client must end with 409 IpAddressGenerationFailure,
  the ports must hold 253 distinct addresses (the /24 less network, broadcast and gateway),
  and no other status may appear. Each client is its own project (admins may create for
  another project), so the per-project quota lock does not order them: the IPAM race is on.
* ``throughput``: ``--ports`` (400) ports on a /20, created one after the other, then by
  ``--clients`` threads; ports/s over the wall clock, p50/p99 of the POSTs.

Processes are stopped by PID at the end (kumo up is started in its own session).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from typing import Any

import httpx

from _common import (
    BackendUnavailable,
    BenchError,
    admin_token,
    backend_run,
    clean_env,
    database_config,
    latency_ms,
    log,
    machine,
    print_table,
    start_up,
)

V2 = "/network/v2.0"


class Api:
    """One client connection with the admin token."""

    def __init__(self, url: str, token: str) -> None:
        self.client = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.client.post(V2 + path, json=body)

    def created(self, path: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.post(path, {key: body})
        if resp.status_code != 201:
            raise BenchError(f"POST {path}: {resp.status_code} {resp.text[:300]}")
        return dict(resp.json()[key])

    def close(self) -> None:
        self.client.close()


def network(api: Api, cidr: str) -> str:
    net = api.created("/networks", "network", {"name": f"bench-{cidr}", "shared": True})
    api.created(
        "/subnets",
        "subnet",
        {"network_id": net["id"], "cidr": cidr, "ip_version": 4, "enable_dhcp": False},
    )
    return str(net["id"])


def race(url: str, token: str, clients: int) -> dict[str, Any]:
    setup = Api(url, token)
    net_id = network(setup, "10.200.0.0/24")
    setup.close()
    addresses: list[str] = []
    statuses: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        api = Api(url, token)
        project = uuid.uuid4().hex
        try:
            while True:
                t0 = time.perf_counter()
                resp = api.post("/ports", {"port": {"network_id": net_id, "project_id": project}})
                elapsed = time.perf_counter() - t0
                key = str(resp.status_code)
                if resp.status_code == 409:
                    key += " " + resp.json()["NeutronError"]["type"]
                with lock:
                    statuses[key] = statuses.get(key, 0) + 1
                    latencies.append(elapsed)
                    if resp.status_code == 201:
                        addresses.extend(f["ip_address"] for f in resp.json()["port"]["fixed_ips"])
                if resp.status_code != 201:
                    return
        finally:
            api.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    distinct = len(set(addresses))
    ok = (
        distinct == 253
        and len(addresses) == 253
        and statuses.get("409 IpAddressGenerationFailure") == clients
        and set(statuses) == {"201", "409 IpAddressGenerationFailure"}
    )
    return {
        "clients": clients,
        "ports": len(addresses),
        "distinct_addresses": distinct,
        "statuses": statuses,
        "wall_s": round(wall, 2),
        "ports_per_s": round(len(addresses) / wall, 1),
        **latency_ms(latencies),
        "correct": ok,
    }


def _phase(
    url: str, token: str, net_id: str, ports: int, threads: int
) -> tuple[float, list[float]]:
    """``ports`` POSTs shared by ``threads`` clients: (wall seconds, latencies)."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client(count: int) -> None:
        api = Api(url, token)
        try:
            for _ in range(count):
                t0 = time.perf_counter()
                resp = api.post("/ports", {"port": {"network_id": net_id}})
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    if resp.status_code != 201:
                        failures.append(f"{resp.status_code} {resp.text[:200]}")
        finally:
            api.close()

    share = [ports // threads + (1 if i < ports % threads else 0) for i in range(threads)]
    t0 = time.perf_counter()
    workers = [threading.Thread(target=client, args=(n,)) for n in share]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    wall = time.perf_counter() - t0
    if failures:
        raise BenchError(f"{len(failures)} of {ports} POSTs failed, first: {failures[0]}")
    return wall, latencies


def throughput(url: str, token: str, ports: int, clients: int) -> list[dict[str, Any]]:
    rows = []
    for label, threads, cidr in (
        ("sequential", 1, "10.210.0.0/20"),
        (f"{clients} clients", clients, "10.220.0.0/20"),
    ):
        setup = Api(url, token)
        net_id = network(setup, cidr)
        setup.close()
        wall, latencies = _phase(url, token, net_id, ports, threads)
        rows.append(
            {
                "case": label,
                "ports": ports,
                "wall_s": round(wall, 2),
                "ports_per_s": round(ports / wall, 1),
                **latency_ms(latencies),
            }
        )
    return rows


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with backend_run(backend, "kumo-bench-ports-") as (root, db_url):
        env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake")
        up, url = start_up(root, env, database_config(db_url))
        try:
            token, project = admin_token(url, root / "state")
            quota = httpx.put(
                f"{url}{V2}/quotas/{project}",
                json={"quota": {"port": -1, "network": -1, "subnet": -1}},
                headers={"X-Auth-Token": token},
                timeout=30,
            )
            if quota.status_code != 200:
                raise BenchError(f"PUT quotas: {quota.status_code} {quota.text[:200]}")
            log(f"{backend}: race of {args.clients} clients on a /24")
            raced = race(url, token, args.clients)
            log(f"{backend}: {args.ports} ports, sequential then {args.clients} clients")
            rows = throughput(url, token, args.ports, args.clients)
        finally:
            up.stop()
    return {"backend": backend, "race": raced, "throughput": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ports", type=int, default=400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = []
    failed = False
    for backend in args.backends.split(","):
        try:
            results.append(run_backend(backend, args))
        except BackendUnavailable as exc:
            print(f"SKIP {backend}: {exc}", file=sys.stderr)
        except BenchError as exc:
            print(f"FAIL {backend}: {exc}", file=sys.stderr)
            failed = True
    failed = failed or any(not r["race"]["correct"] for r in results)
    if args.json:
        print(json.dumps({"machine": machine(), "results": results}, indent=2))
        return 1 if failed else 0
    cells = [["backend", "case", "correct", "ports", "ports/s", "p50 ms", "p99 ms"]]
    for r in results:
        race_row = r["race"]
        cells.append(
            [
                r["backend"],
                f"race: {race_row['clients']} clients, one /24",
                "yes" if race_row["correct"] else f"NO {race_row['statuses']}",
                str(race_row["ports"]),
                str(race_row["ports_per_s"]),
                str(race_row["p50_ms"]),
                str(race_row["p99_ms"]),
            ]
        )
        for row in r["throughput"]:
            cells.append(
                [
                    r["backend"],
                    row["case"],
                    "",
                    str(row["ports"]),
                    str(row["ports_per_s"]),
                    str(row["p50_ms"]),
                    str(row["p99_ms"]),
                ]
            )
    print_table(cells)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

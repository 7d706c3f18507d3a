"""Block storage (issue 5, "Done when" 7): create/delete throughput of ``--volumes`` (100)
volumes on the file backend, and attach/detach latency on a running guest.

The script starts its own ``kumo up`` (SQLite, the qemu driver when installed, the file
backend under its state directory), lifts the project's volume quotas, then:

1. POSTs ``--volumes`` 1 GiB volumes from ``--clients`` (8) concurrent clients and waits
   until all are ``available`` (the agent's volume loop makes each qcow2 file), then deletes
   them all and waits until all are gone: volumes per second for each, and POST p50/p99.
2. Boots one kumo-tiny server, waits for its console to show the guest's hostname, and
   ``--cycles`` (10) times attaches a volume through Nova's os-volume_attachments (timed
   until the volume is ``in-use``: the agent hot-plugged it with QMP) and detaches it (timed
   until ``available``: the guest released it and QEMU closed the image).

Status is polled every 10 ms. At the end the cloud is stopped by PID (guests included:
``kumo up`` is the parent of nothing; the script deletes the server first).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from _common import (
    BenchError,
    admin_token,
    clean_env,
    log,
    machine,
    percentile,
    print_table,
    start_up,
    wait_until,
)

V3 = "/volume/v3"
SERVERS = "/compute/v2.1/servers"


def _statuses(c: httpx.Client) -> dict[str, str]:
    volumes = c.get(f"{V3}/volumes/detail").json()["volumes"]
    return {v["id"]: v["status"] for v in volumes}


def _throughput(c: httpx.Client, url: str, token: str, opts: argparse.Namespace) -> dict[str, Any]:
    def post(index: int) -> tuple[str, float]:
        with httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60) as own:
            start = time.monotonic()
            made = own.post(f"{V3}/volumes", json={"volume": {"size": 1, "name": f"b{index}"}})
            took = time.monotonic() - start
            if made.status_code != 202:
                raise BenchError(f"volume create: {made.status_code} {made.text}")
            return str(made.json()["volume"]["id"]), took

    log(f"creating {opts.volumes} volumes from {opts.clients} clients")
    start = time.monotonic()
    with ThreadPoolExecutor(opts.clients) as pool:
        results = list(pool.map(post, range(opts.volumes)))
    ids = [r[0] for r in results]

    def all_available() -> bool:
        statuses = _statuses(c)
        bad = [i for i in ids if statuses.get(i) == "error"]
        if bad:
            raise BenchError(f"volume {bad[0]} went to error")
        return all(statuses.get(i) == "available" for i in ids)

    wait_until(all_available, 600, "all volumes available")
    created = time.monotonic() - start
    log(f"{opts.volumes} available in {created:.2f}s; deleting")
    start = time.monotonic()
    delete_times = []
    for volume_id in ids:
        t = time.monotonic()
        c.delete(f"{V3}/volumes/{volume_id}").raise_for_status()
        delete_times.append(time.monotonic() - t)
    wait_until(lambda: not set(ids) & set(_statuses(c)), 600, "all volumes gone")
    deleted = time.monotonic() - start
    posts = [r[1] for r in results]
    return {
        "create_per_s": opts.volumes / created,
        "delete_per_s": opts.volumes / deleted,
        "post_ms": {"p50": percentile(posts, 50) * 1000, "p99": percentile(posts, 99) * 1000},
        "delete_ms": {
            "p50": percentile(delete_times, 50) * 1000,
            "p99": percentile(delete_times, 99) * 1000,
        },
    }


def _status(c: httpx.Client, volume_id: str) -> str:
    return str(c.get(f"{V3}/volumes/{volume_id}").json()["volume"]["status"])


def _attach_latency(c: httpx.Client, opts: argparse.Namespace) -> dict[str, Any]:
    image = c.get("/image/v2/images", params={"name": "kumo-tiny"}).json()["images"][0]["id"]
    made = c.post(SERVERS, json={"server": {"name": "bench", "imageRef": image, "flavorRef": "1"}})
    if made.status_code != 202:
        raise BenchError(f"server create: {made.status_code} {made.text}")
    server = made.json()["server"]["id"]

    def console_has_hostname() -> bool:
        out = c.post(f"{SERVERS}/{server}/action", json={"os-getConsoleOutput": {}})
        return out.status_code == 200 and "kumo-guest: hostname" in out.json()["output"]

    wait_until(
        lambda: c.get(f"{SERVERS}/{server}").json()["server"]["status"] == "ACTIVE",
        300,
        "the server to be ACTIVE",
    )
    wait_until(console_has_hostname, 120, "the guest to boot")
    volume = c.post(f"{V3}/volumes", json={"volume": {"size": 1, "name": "hot"}}).json()["volume"]
    wait_until(lambda: _status(c, volume["id"]) == "available", 120, "the volume")
    attach, detach = [], []
    url = f"{SERVERS}/{server}/os-volume_attachments"
    for cycle in range(opts.cycles):
        start = time.monotonic()
        c.post(url, json={"volumeAttachment": {"volumeId": volume["id"]}}).raise_for_status()
        wait_until(lambda: _status(c, volume["id"]) == "in-use", 120, "the attach")
        attach.append(time.monotonic() - start)
        start = time.monotonic()
        c.delete(f"{url}/{volume['id']}").raise_for_status()
        wait_until(lambda: _status(c, volume["id"]) == "available", 300, "the detach")
        detach.append(time.monotonic() - start)
        took = f"attach {attach[-1] * 1000:.0f} ms, detach {detach[-1] * 1000:.0f} ms"
        log(f"cycle {cycle + 1}: {took}")
    c.delete(f"{SERVERS}/{server}")
    wait_until(lambda: c.get(f"{SERVERS}/{server}").status_code == 404, 120, "the server to go")
    return {
        "attach_ms": {"p50": percentile(attach, 50) * 1000, "p99": percentile(attach, 99) * 1000},
        "detach_ms": {"p50": percentile(detach, 50) * 1000, "p99": percentile(detach, 99) * 1000},
    }


def run(opts: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="kumo-bench-volumes-"))
    env = clean_env()
    up, url = start_up(root, env)
    try:
        token, project = admin_token(url, root / "state")
        c = httpx.Client(base_url=url, headers={"X-Auth-Token": token}, timeout=60)
        quota = {"volumes": -1, "gigabytes": -1, "snapshots": -1}
        c.put(f"{V3}/os-quota-sets/{project}", json={"quota_set": quota}).raise_for_status()
        result: dict[str, Any] = {"machine": machine(), "volumes": opts.volumes}
        result.update(_throughput(c, url, token, opts))
        if opts.cycles:
            result.update(_attach_latency(c, opts))
        return result
    finally:
        up.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=100)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args(argv)
    try:
        result = run(opts)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if opts.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = [
        ["measure", "value", "p50 ms", "p99 ms"],
        [
            f"create {opts.volumes} (POST to all available)",
            f"{result['create_per_s']:.1f} volumes/s",
            f"{result['post_ms']['p50']:.0f}",
            f"{result['post_ms']['p99']:.0f}",
        ],
        [
            f"delete {opts.volumes} (DELETE to all gone)",
            f"{result['delete_per_s']:.1f} volumes/s",
            f"{result['delete_ms']['p50']:.0f}",
            f"{result['delete_ms']['p99']:.0f}",
        ],
    ]
    if "attach_ms" in result:
        for key, label in (("attach_ms", "attach to a running guest"), ("detach_ms", "detach")):
            rows.append(
                [label, f"{opts.cycles} cycles", f"{result[key]['p50']:.0f}",
                 f"{result[key]['p99']:.0f}"]
            )  # fmt: skip
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

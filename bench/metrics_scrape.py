"""What a Prometheus scrape of /metrics costs with 10,000 servers (issue 14, part 5).

The cloud's gauges are read from the database at each scrape (kumo.core.monitoring), so
their cost grows with the cloud. For each backend the script makes a throwaway database
(_common.BACKENDS), migrates it and fills it with rows written directly (no agents): 20
hosts, 50 projects, ``--servers`` servers (80% ACTIVE, 15% SHUTOFF, 5% ERROR) each with
its allocation, a guest port on its project's network, a ``create`` action and one
finished ``attach_volume`` action (one in ten failed), a DHCP port per network and host
with guests, and 100 routers on the hosts. Then it times, after a warm-up:

* ``GET /metrics`` through the ASGI app in-process (fastapi ``TestClient``, no sockets),
  with the SQL statements each sends and the size of the answer;
* each query of kumo.core.monitoring alone, in its own session.

Run: ``.venv/bin/python bench/metrics_scrape.py`` (``--help`` for the flags).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, insert
from sqlalchemy.orm import Session

from kumo.api.app import create_app
from kumo.api.cloud_metrics import ACTION_BUCKETS
from kumo.config import Config, SchedulerConfig
from kumo.core import monitoring
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.migrate import upgrade
from kumo.db.types import utcnow

from _common import BackendUnavailable, backend_run, latency_ms, log, machine, print_table, timed

HOSTS, PROJECTS, ROUTERS = 20, 50, 100
FLAVOR = {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 128, "disk": 1}


def _uuid() -> str:
    return str(uuid.uuid4())


def populate(db: Database, servers: int) -> None:
    """The rows of a cloud with ``servers`` servers, written in bulk."""
    now = utcnow()
    hosts = [_uuid() for _ in range(HOSTS)]
    projects = [_uuid() for _ in range(PROJECTS)]
    networks = {p: _uuid() for p in projects}
    with db.session() as session:
        session.execute(
            insert(m.Host),
            [
                {
                    "id": h,
                    "name": f"host-{i:02d}",
                    "agent_api_versions": ["v1"],
                    "capabilities": {"hypervisor": {"driver": "fake"}},
                    "inventory": {"vcpus": 64, "memory_mb": 262144, "disk_gb": 2048},
                    "registered_at": now,
                    "last_heartbeat_at": now,
                }
                for i, h in enumerate(hosts)
            ],
        )
        session.execute(
            insert(m.Network),
            [
                {"id": n, "project_id": p, "name": "net", "network_type": "vxlan"}
                for p, n in networks.items()
            ],
        )
    instances, allocations, ports, actions = [], [], [], []
    dhcp: set[tuple[str, str, str]] = set()
    for i in range(servers):
        server, host, project = _uuid(), hosts[i % HOSTS], projects[i % PROJECTS]
        state = "active" if i % 20 < 16 else ("stopped" if i % 20 < 19 else "error")
        instances.append(
            {
                "id": server,
                "name": f"vm-{i}",
                "project_id": project,
                "user_id": project,
                "host_id": host,
                "flavor_id": "1",
                "flavor": FLAVOR,
                "vm_state": state,
                "created_at": now,
            }
        )
        allocations.append(
            {"instance_id": server, "host_id": host, "vcpus": 1, "memory_mb": 128, "disk_gb": 1}
        )
        ports.append(
            {
                "id": _uuid(),
                "network_id": networks[project],
                "project_id": project,
                "mac_address": f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
                "device_id": server,
                "device_owner": "compute:nova",
                "binding_host_id": host,
            }
        )
        dhcp.add((networks[project], project, host))
        start = now - dt.timedelta(seconds=1 + i % 90)
        actions.append(_action(server, project, "create", start, None, None))
        failed = "Error: the host said no" if i % 10 == 0 else None
        finish = start + dt.timedelta(seconds=i % 30 / 3)
        actions.append(_action(server, project, "attach_volume", start, finish, failed))
    for j, (network, project, host) in enumerate(sorted(dhcp)):
        ports.append(
            {
                "id": _uuid(),
                "network_id": network,
                "project_id": project,
                "mac_address": f"fa:16:3f:00:{j >> 8 & 255:02x}:{j & 255:02x}",
                "device_id": f"dhcp-{host}",
                "device_owner": "network:dhcp",
                "binding_host_id": host,
            }
        )
    routers = [
        {"id": _uuid(), "project_id": projects[i % PROJECTS], "host_id": hosts[i % HOSTS]}
        for i in range(ROUTERS)
    ]
    chunk = 2000
    with db.session() as session:
        for model, rows in (
            (m.Instance, instances),
            (m.Allocation, allocations),
            (m.Port, ports),
            (m.InstanceAction, actions),
            (m.Router, routers),
        ):
            for start_at in range(0, len(rows), chunk):
                session.execute(insert(model), rows[start_at : start_at + chunk])


def _action(
    server: str,
    project: str,
    action: str,
    start: dt.datetime,
    finish: dt.datetime | None,
    message: str | None,
) -> dict[str, Any]:
    return {
        "instance_id": server,
        "action": action,
        "request_id": "req-" + _uuid(),
        "user_id": project,
        "project_id": project,
        "start_time": start,
        "finish_time": finish,
        "message": message,
    }


class Statements:
    """Counts the SQL statements the engine sends."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


def _row(
    backend: str, servers: int, case: str, timing: tuple[list[float], float], **extra: Any
) -> dict[str, Any]:
    durations, cpu = timing
    return {
        "backend": backend,
        "servers": servers,
        "case": case,
        "n": len(durations),
        **latency_ms(durations),
        "cpu_ms": round(cpu * 1000, 1),
        **extra,
    }


def measure(backend: str, url: str, opts: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        upgrade(db)
        populate(db, opts.servers)
        config = Config.model_validate(
            {"state_dir": str(root), "database": {"url": url}, "api": {"public_url": "http://b"}}
        )
        client = TestClient(create_app(config, db))
        statements = Statements(db)

        def scrape() -> None:
            resp = client.get("/metrics")
            if resp.status_code != 200:
                raise RuntimeError(f"/metrics: {resp.status_code} {resp.text[:300]}")

        before = statements.count
        scrape()
        per_scrape = statements.count - before
        body = client.get("/metrics").content
        series = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
        timing = timed(scrape, opts.iterations, 3)
        sizes = {"statements": per_scrape, "bytes": len(body), "series": series}
        rows = [_row(backend, opts.servers, "GET /metrics", timing, **sizes)]
        cfg = SchedulerConfig()
        parts: dict[str, Callable[[Session], object]] = {
            "servers_by_status": monitoring.servers_by_status,
            "host_figures": lambda s: monitoring.host_figures(s, cfg, 30.0),
            "unplaced_routers": monitoring.unplaced_routers,
            "action_figures": lambda s: monitoring.action_figures(s, ACTION_BUCKETS),
        }
        for name, part in parts.items():

            def run(part: Callable[[Session], object] = part) -> None:
                with db.session() as session:
                    part(session)

            rows.append(_row(backend, opts.servers, name, timed(run, opts.iterations, 3)))
        return rows
    finally:
        db.dispose()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--servers", type=int, default=10_000)
    p.add_argument("--iterations", type=int, default=30)
    p.add_argument("--json", action="store_true")
    opts = p.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for backend in opts.backends.split(","):
        try:
            with backend_run(backend, "kumo-bench-metrics-") as (root, url):
                log(f"{backend}: {opts.servers} servers")
                rows += measure(backend, url, opts, root)
        except BackendUnavailable as exc:
            print(f"SKIP {backend}: {exc}", file=sys.stderr)
    if opts.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        return 0
    keys = (
        "backend", "servers", "case", "n", "p50_ms", "p99_ms", "cpu_ms", "statements", "bytes",
        "series",
    )  # fmt: skip
    print_table([list(keys)] + [[str(r.get(k, "")) for k in keys] for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())

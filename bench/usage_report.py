"""`kumo usage report` over 10,000 servers and a month of ledger rows (issue 14, part 5).

For each backend the script makes a throwaway database (_common.BACKENDS), migrates it
and writes the usage ledger directly (no agents, no API calls): 50 projects, ``--servers``
servers each with ``--intervals`` intervals spread over November 2026 (running, stopped,
a resize to another flavor, a move to another host; the last one left open), and per
project 20 volumes (one extend each), 5 floating IPs and 2 images. Then it times, after a
warm-up:

* ``core report, all projects``: ``kumo.core.usage_report.report`` for the month, one
  session, with prices (the cost columns);
* ``core report, one project``: the same for one project (``--project``);
* ``cli json`` / ``cli csv`` / ``cli table``: the real ``kumo usage report`` command in a
  new process (``.venv/bin/kumo``), interpreter start and imports included (its ``cpu ms``
  is the child process's CPU time); ``kumo --help`` and ``kumo host list`` (no hosts) next
  to it, what any command and a small database command cost (bench/README.md, "CLI
  start"). With ``--baseline-src DIR`` each command also runs from ``DIR/src`` (another
  checkout, e.g. main's), alternating with this one: an A/B in one window.

Run: ``.venv/bin/python bench/usage_report.py`` (``--help`` for the flags).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from kumo.core import usage_report
from kumo.db.engine import Database
from kumo.db.migrate import upgrade
from kumo.db.usage_tables import UsageInterval

from _common import (
    BIN,
    BackendUnavailable,
    backend_run,
    latency_ms,
    log,
    machine,
    print_table,
    timed,
)

PROJECTS = 50
START, END = dt.datetime(2026, 11, 1), dt.datetime(2026, 12, 1)
FLAVORS = [
    ("1", "m1.tiny", 1, 128, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
]
PRICES = {"vcpu_hour": 0.02, "ram_gib_hour": 0.005, "disk_gib_hour": 0.0002,
          "volume_gib_hour": 0.0001, "floating_ip_hour": 0.004}  # fmt: skip


def _uuid() -> str:
    return str(uuid.uuid4())


def _cuts(rng: random.Random, n: int) -> list[dt.datetime]:
    """n instants in the month, sorted: where one interval ends and the next starts."""
    seconds = int((END - START).total_seconds())
    return sorted(START + dt.timedelta(seconds=rng.randrange(seconds)) for _ in range(n))


def populate(db: Database, servers: int, per_server: int) -> int:
    """Write the ledger; returns the number of rows."""
    rng = random.Random(14)
    projects = [_uuid() for _ in range(PROJECTS)]
    hosts = [_uuid() for _ in range(20)]
    rows: list[dict[str, Any]] = []
    base = dict.fromkeys(("user_id", "flavor_id", "flavor_name", "state", "host_id",
                          "volume_type_id", "address"))  # fmt: skip
    base.update(vcpus=0, memory_mb=0, disk_gb=0, size_gb=0)
    for index in range(servers):
        project = projects[index % PROJECTS]
        server, host = _uuid(), rng.choice(hosts)
        flavor = rng.choice(FLAVORS)
        cuts = _cuts(rng, per_server)
        for k, begin in enumerate(cuts):
            if k % 4 == 2:  # resized
                flavor = rng.choice(FLAVORS)
            if k % 4 == 3:  # moved
                host = rng.choice(hosts)
            rows.append({**base, "resource_type": "server", "resource_id": server,
                         "project_id": project, "user_id": project, "flavor_id": flavor[0],
                         "flavor_name": flavor[1], "vcpus": flavor[2], "memory_mb": flavor[3],
                         "disk_gb": flavor[4], "state": "stopped" if k % 4 == 1 else "running",
                         "host_id": host, "started_at": begin,
                         "ended_at": cuts[k + 1] if k + 1 < len(cuts) else None})  # fmt: skip
    for project in projects:
        for _ in range(20):
            volume, size = _uuid(), rng.randint(1, 100)
            first, second = _cuts(rng, 2)
            for begin, end, gb in ((first, second, size), (second, None, size * 2)):
                rows.append({**base, "resource_type": "volume", "resource_id": volume,
                             "project_id": project, "size_gb": gb, "started_at": begin,
                             "ended_at": end})  # fmt: skip
        for n in range(5):
            rows.append({**base, "resource_type": "floating_ip", "resource_id": _uuid(),
                         "project_id": project, "address": f"203.0.113.{n}",
                         "started_at": _cuts(rng, 1)[0], "ended_at": None})  # fmt: skip
        for _ in range(2):
            rows.append({**base, "resource_type": "image", "resource_id": _uuid(),
                         "project_id": project, "size_gb": 2, "started_at": START,
                         "ended_at": None})  # fmt: skip
    with db.engine.begin() as conn:
        for chunk in range(0, len(rows), 5000):
            conn.execute(insert(UsageInterval), rows[chunk : chunk + 5000])
    return len(rows)


def _row(backend: str, case: str, timing: tuple[list[float], float], rows: int) -> dict[str, Any]:
    durations, cpu = timing
    return {
        "backend": backend,
        "case": case,
        "ledger_rows": rows,
        "n": len(durations),
        **latency_ms(durations),
        "cpu_ms": round(cpu * 1000, 1) if cpu else "",
    }


def measure(backend: str, url: str, opts: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    db = Database(url)
    try:
        upgrade(db)
        started = time.perf_counter()
        count = populate(db, opts.servers, opts.intervals)
        log(f"{backend}: {count} ledger rows written in {time.perf_counter() - started:.1f} s")
        with db.session() as session:
            one = session.scalars(select(UsageInterval.project_id).limit(1)).one()

        def core(project: str | None) -> Any:
            def run() -> None:
                with db.session() as session:
                    found = usage_report.report(session, START, END, project, PRICES)
                    if not found.projects:
                        raise RuntimeError("an empty report")

            return run

        out: list[dict[str, Any]] = []
        for case, project in (("all projects", None), ("one project", one)):
            timing = timed(core(project), opts.iterations, 2)
            out.append(_row(backend, f"core report, {case}", timing, count))
        config = root / "kumo.toml"
        config.write_text(
            f'state_dir = "{root / "state"}"\n[database]\nurl = "{url}"\n[usage.prices]\n'
            + "".join(f"{k} = {v}\n" for k, v in PRICES.items())
        )
        out += commands(backend, config, count, opts)
        return out
    finally:
        db.dispose()


# The commands timed in a new process: (case, arguments after `kumo`).
def _commands(config: Path) -> list[tuple[str, list[str]]]:
    period = ["--start", START.isoformat(), "--end", END.isoformat()]
    report = ["--config", str(config), "usage", "report", *period]
    return [
        ("cli json (new process)", [*report, "--format", "json"]),
        ("cli csv (new process)", [*report, "--format", "csv"]),
        ("cli table (new process)", [*report, "--format", "table"]),
        # What any kumo command costs: Python and its imports.
        ("kumo --help (baseline)", ["--help"]),
        # A small database command: configuration, engine, one query.
        ("kumo host list -f json", ["--config", str(config), "host", "list", "-f", "json"]),
    ]


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One `kumo` process: its wall time and its own CPU (user + system) in seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "kumo"), *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"kumo {' '.join(args[:4])}: {done.stderr[-500:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu


def commands(
    backend: str, config: Path, count: int, opts: argparse.Namespace
) -> list[dict[str, Any]]:
    """Each command ``--cli-iterations`` times after a warm-up; with ``--baseline-src``
    also with that tree's ``src`` first on PYTHONPATH ("before"), the two alternating
    A B B A so that both see the same machine load (a shared machine's speed drifts by
    2x in minutes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUMO_", "OS_"))}
    env.pop("PYTHONPATH", None)
    variants = {"": env}
    if opts.baseline_src:
        src = str(Path(opts.baseline_src).absolute() / "src")
        variants = {" [before]": {**env, "PYTHONPATH": src}, " [after]": env}
    out: list[dict[str, Any]] = []
    for case, args in _commands(config):
        runs: dict[str, list[tuple[float, float]]] = {label: [] for label in variants}
        for variant in variants.values():  # warm-up: the page cache, the bytecode
            _run(args, variant)
        for i in range(opts.cli_iterations):
            order = list(variants) if i % 2 == 0 else list(reversed(variants))
            for label in order:
                runs[label].append(_run(args, variants[label]))
        for label, timings in runs.items():
            walls = [w for w, _ in timings]
            cpu = sum(c for _, c in timings) / len(timings)
            out.append(_row(backend, case + label, (walls, cpu), count))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--servers", type=int, default=10_000)
    p.add_argument("--intervals", type=int, default=4, help="ledger rows per server")
    p.add_argument("--iterations", type=int, default=10)
    p.add_argument("--cli-iterations", type=int, default=5)
    p.add_argument(
        "--baseline-src",
        help="a checkout to compare with (e.g. `git worktree add /tmp/base main`): its src/ "
        "runs the commands too, alternating with this one's",
    )
    p.add_argument("--json", action="store_true")
    opts = p.parse_args(argv)
    rows: list[dict[str, Any]] = []
    failed = False
    for backend in opts.backends.split(","):
        try:
            with backend_run(backend, "kumo-bench-usage-") as (root, url):
                rows += measure(backend, url, opts, root)
        except BackendUnavailable as exc:
            print(f"SKIP {backend}: {exc}", file=sys.stderr)
        except Exception as exc:  # a failed backend is reported, the others still run
            print(f"FAIL {backend}: {exc!r}", file=sys.stderr)
            failed = True
    if opts.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    else:
        keys = ("backend", "case", "ledger_rows", "n", "p50_ms", "p99_ms", "cpu_ms")
        print_table([list(keys)] + [[str(r.get(k, "")) for k in keys] for r in rows])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Control-plane benchmark: servers through the compute API on a real `kumo up`, fake driver.

For each backend (SQLite, PostgreSQL; MariaDB on request) the script starts its own
cloud, the way the Nova reference figures of issue 3 were taken (Nova 34 with its fake
driver, 10 hosts, m1.tiny, no networks):

* ``kumo up`` in a temporary state directory, with ``KUMO_COMPUTE_HYPERVISOR=fake`` and
  ``KUMO_AGENT_HEARTBEAT_INTERVAL=1``; its local agent is host 1;
* 9 more hosts, each a real ``kumo serve agent --name fake-N`` process with its own state
  directory, the controller's host credential and the fake driver;
* a project-scoped admin token, an image uploaded through the image API (small raw),
  flavor m1.tiny, compute microversion 2.10 (so ``networks`` is omitted), and the admin
  project's quotas lifted by writing ``QuotaLimit`` rows (there is no os-quota-sets yet).

Then, through HTTP as a client would (httpx):

* one server alone, POST to ACTIVE (GET /servers/{id} polled tightly), best/median of N;
* N servers POSTed one after the other, time from the first POST until all are ACTIVE;
* N servers from C concurrent clients, the same, best/median of N runs; then
  ``GET /servers/detail`` with them; then deleting them all from C clients until gone;
* ``GET /servers/detail`` with 1,000 servers (created with max_count batches).

Everything started is stopped by its PID at the end. Run: ``.venv/bin/python
bench/servers.py`` (``--quick`` for a short run, ``--help`` for the flags).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from kumo.core import hosts as core_hosts
from kumo.db.engine import Database

from _common import (
    BACKENDS,
    BIN,
    KUMO,
    PG_ADMIN_DSN,
    START_DEADLINE,
    BackendUnavailable,
    BenchError,
    Proc,
    add_output_options,
    admin_token,
    backend_run,
    clean_env,
    cpu_seconds,
    database_config,
    lift_quotas,
    log,
    machine,
    percentile,
    print_table,
    spawn,
    start_up,
)

PY_SPY = BIN / "py-spy"
MICROVERSION = "2.10"
COMPUTE = "/compute/v2.1"
FLAVOR = "1"  # m1.tiny: 1 vCPU, 128 MiB, 1 GiB
HEARTBEAT_TIMEOUT = 30.0
# 10 hosts of this machine's 2 vCPUs hold 320 m1.tiny at the default ratio of 16; the
# 1,000-server listing needs more room (Nova's fake driver reports 1,000 vCPUs a host).
CPU_ALLOCATION_RATIO = 64.0

# Issue 3, "Done when" item 8: Nova 34, fake driver, 10 hosts, same kind of machine.
# (best, median of 3) where the issue gives both; None where it gives none.
NOVA: dict[str, tuple[float | None, float | None]] = {
    "single_ms": (555.0, 598.0),
    "concurrent_sps": (0.77, 0.54),
    "delete_sps": (1.44, 1.08),
    "detail_small_p50_ms": (1075.0, None),
    "detail_large_p50_ms": (6829.0, None),
}
# The issue's figures are for these server counts; other counts are not compared.
ISSUE_N = {
    "single_ms": 1,
    "concurrent_sps": 200,
    "delete_sps": 200,
    "detail_small_p50_ms": 200,
    "detail_large_p50_ms": 1000,
}
TARGETS = {
    "single_ms": ("<", 100.0),
    "concurrent_sps": (">=", 50.0),
    "detail_small_p50_ms": ("<", 20.0),
    "detail_large_p50_ms": ("<", 100.0),
}


def pg_counters(url: str) -> dict[str, int] | None:
    """Transactions and rows of the throwaway database (pg_stat_database), or None."""
    if not url.startswith("postgresql"):
        return None
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,"
            " tup_updated, tup_deleted FROM pg_stat_database WHERE datname = %s",
            (name,),
        ).fetchone()
    if row is None:
        return None
    keys = ("commits", "rollbacks", "returned", "fetched", "inserted", "updated", "deleted")
    return dict(zip(keys, (int(v) for v in row), strict=True))


# --- the cloud --------------------------------------------------------------------------


@dataclass
class Cloud:
    url: str
    db_url: str
    root: Path
    up: Proc
    agents: list[Proc] = field(default_factory=list)

    def all(self) -> list[Proc]:
        return [self.up, *self.agents]

    def stop(self) -> None:
        for proc in reversed(self.all()):
            proc.stop()


def start_cloud(root: Path, db_url: str, hosts: int, src: Path | None = None) -> Cloud:
    state = root / "state"
    config = f"[scheduler]\ncpu_allocation_ratio = {CPU_ALLOCATION_RATIO}\n\n"
    config += database_config(db_url)
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake", KUMO_AGENT_HEARTBEAT_INTERVAL="1")
    if src is not None:  # run another source tree (an A/B comparison), ahead of the venv's
        env["PYTHONPATH"] = str(src.resolve())
    up, url = start_up(root, env, config)
    cloud = Cloud(url, db_url, root, up)
    try:
        credential = state / "host-credential"
        for n in range(2, hosts + 1):
            agent_state = root / f"agent-{n}"
            agent_state.mkdir()
            cloud.agents.append(
                spawn(
                    f"agent fake-{n}",
                    [
                        KUMO,
                        "--state-dir",
                        str(agent_state),
                        "serve",
                        "agent",
                        "--name",
                        f"fake-{n}",
                        "--api-url",
                        url,
                        "--credential-file",
                        str(credential),
                    ],
                    env,
                    root / f"agent-{n}.log",
                )
            )
        wait_for_hosts(cloud, hosts)
    except BaseException:
        cloud.stop()
        raise
    return cloud


def wait_for_hosts(cloud: Cloud, count: int) -> None:
    """Until ``count`` hosts with a hypervisor driver are registered and alive."""
    db = Database(cloud.db_url)
    deadline = time.monotonic() + START_DEADLINE
    try:
        while True:
            for proc in cloud.all():
                if proc.process.poll() is not None:
                    raise BenchError(f"{proc.name} exited:\n{proc.tail()}")
            with db.session() as session:
                up = [
                    s
                    for s in core_hosts.list_hosts(session, HEARTBEAT_TIMEOUT)
                    if s.up and (s.host.capabilities or {}).get("hypervisor")
                ]
            if len(up) >= count:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"only {len(up)} of {count} hosts came up")
            time.sleep(0.3)
    finally:
        db.dispose()


# --- the client -------------------------------------------------------------------------


class Client:
    """httpx with a project-scoped admin token and compute microversion 2.10."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.http = httpx.Client(
            base_url=url,
            timeout=60.0,
            headers={
                "X-Auth-Token": token,
                "OpenStack-API-Version": f"compute {MICROVERSION}",
                "X-OpenStack-Nova-API-Version": MICROVERSION,
            },
        )

    def close(self) -> None:
        self.http.close()

    def check(self, resp: httpx.Response, *codes: int) -> httpx.Response:
        if resp.status_code not in codes:
            raise BenchError(
                f"{resp.request.method} {resp.request.url.path}: "
                f"{resp.status_code} {resp.text[:500]}"
            )
        return resp

    def create(self, image_id: str, name: str, count: int = 1) -> tuple[str, float]:
        """POST /servers; returns the first server's id and the request's latency."""
        body: dict[str, Any] = {"name": name, "imageRef": image_id, "flavorRef": FLAVOR}
        if count > 1:
            body["min_count"] = body["max_count"] = count
        start = time.perf_counter()
        resp = self.http.post(f"{COMPUTE}/servers", json={"server": body})
        took = time.perf_counter() - start
        self.check(resp, 202)
        return str(resp.json()["server"]["id"]), took

    def delete(self, server_id: str) -> float:
        start = time.perf_counter()
        resp = self.http.delete(f"{COMPUTE}/servers/{server_id}")
        took = time.perf_counter() - start
        self.check(resp, 204, 404)
        return took

    def show(self, server_id: str) -> dict[str, Any] | None:
        resp = self.http.get(f"{COMPUTE}/servers/{server_id}")
        if resp.status_code == 404:
            return None
        return dict(self.check(resp, 200).json()["server"])

    def ids(self, **params: str) -> set[str]:
        resp = self.check(self.http.get(f"{COMPUTE}/servers", params=params), 200)
        return {s["id"] for s in resp.json()["servers"]}

    def detail(self) -> tuple[int, float]:
        start = time.perf_counter()
        resp = self.http.get(f"{COMPUTE}/servers/detail")
        took = time.perf_counter() - start
        return len(self.check(resp, 200).json()["servers"]), took


def upload_image(client: Client) -> str:
    """A small raw image through the image API (create, upload, wait active)."""
    resp = client.check(
        client.http.post(
            "/image/v2/images",
            json={
                "name": "bench-raw",
                "disk_format": "raw",
                "container_format": "bare",
                "visibility": "public",
            },
        ),
        201,
    )
    image_id = str(resp.json()["id"])
    client.check(
        client.http.put(
            f"/image/v2/images/{image_id}/file",
            content=bytes(1 << 20),
            headers={"Content-Type": "application/octet-stream"},
        ),
        204,
    )
    status = client.check(client.http.get(f"/image/v2/images/{image_id}"), 200).json()["status"]
    if status != "active":
        raise BenchError(f"image {image_id} is {status} after upload")
    return image_id


# --- waiting ----------------------------------------------------------------------------


class Watch:
    """Server statuses as a polling client can follow them cheaply: each poll is
    ``GET /servers/detail?changes-since=T`` and returns only the servers changed since the
    previous poll (minus a margin), deleted ones included as DELETED. A plain listing would
    load every server on each poll and become a large part of the load it measures."""

    MARGIN = dt.timedelta(seconds=2)
    STRAGGLERS = 8

    def __init__(self, client: Client) -> None:
        self.client = client
        self.status: dict[str, tuple[str, Any]] = {}
        self.since = self._now() - self.MARGIN
        self.polls = 0

    @staticmethod
    def _now() -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def refresh(self) -> float:
        """One poll; returns the perf_counter time its answer arrived."""
        stamp = self._now() - self.MARGIN
        resp = self.client.http.get(
            f"{COMPUTE}/servers/detail",
            params={"changes-since": self.since.isoformat() + "Z"},
        )
        arrived = time.perf_counter()
        for server in self.client.check(resp, 200).json()["servers"]:
            self.status[server["id"]] = (server["status"], server.get("fault"))
        self.since = stamp
        self.polls += 1
        return arrived

    def settle(self, ids: set[str], done: Callable[[str], bool]) -> None:
        """Ask for the last few stragglers one by one: a row's updated_at is stamped when its
        transaction writes, which may be well before it commits (a writer waiting for the
        SQLite lock), so changes-since alone can miss a change older than the margin."""
        left = [i for i in ids if not done(i)]
        if 0 < len(left) <= self.STRAGGLERS:
            for server_id in left:
                shown = self.client.show(server_id)
                self.status[server_id] = (
                    ("DELETED", None) if shown is None else (shown["status"], shown.get("fault"))
                )

    def until(
        self, ids: set[str], done: Callable[[str], bool], timeout: float, poll: float
    ) -> float:
        deadline = time.monotonic() + timeout
        while True:
            self.refresh()
            self.settle(ids, done)
            arrived = time.perf_counter()
            if all(done(i) for i in ids):
                return arrived
            broken = [i for i in ids if self.status.get(i, ("",))[0] == "ERROR"]
            if broken:
                fault = self.status[broken[0]][1]
                raise BenchError(f"{len(broken)} servers went to ERROR: {fault}")
            if time.monotonic() > deadline:
                left = [i for i in ids if not done(i)]
                raise BenchError(
                    f"{len(left)} of {len(ids)} servers not done in {timeout}s; e.g. "
                    f"{left[0]}: {self.client.show(left[0])}"
                )
            time.sleep(poll)

    def active(self, ids: set[str], timeout: float, poll: float) -> float:
        """Until every one of ``ids`` is ACTIVE (an ERROR fails the run at once)."""
        return self.until(ids, lambda i: self.status.get(i, ("",))[0] == "ACTIVE", timeout, poll)

    def gone(self, ids: set[str], timeout: float, poll: float) -> float:
        """Until every one of ``ids`` is DELETED."""
        return self.until(ids, lambda i: self.status.get(i, ("",))[0] == "DELETED", timeout, poll)


# --- measurements -----------------------------------------------------------------------


@dataclass
class Row:
    backend: str
    key: str
    case: str
    n: int
    runs: list[float]  # the figure of each run (ms or servers/s)
    unit: str  # "ms" or "servers/s"
    best: float
    median: float
    post_p50_ms: float | None = None
    post_p99_ms: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # CPU ms per server, by process
    pg: dict[str, float] = field(default_factory=dict)  # pg_stat_database deltas per server
    command: str = ""


def _row_ms(backend: str, key: str, case: str, n: int, runs: list[float], **kw: Any) -> Row:
    return Row(backend, key, case, n, runs, "ms", min(runs), statistics.median(runs), **kw)


def _row_rate(backend: str, key: str, case: str, n: int, runs: list[float], **kw: Any) -> Row:
    return Row(backend, key, case, n, runs, "servers/s", max(runs), statistics.median(runs), **kw)


@dataclass
class Options:
    backends: list[str]
    hosts: int
    runs: int
    single_runs: int
    sequential: int
    concurrent: int
    clients: int
    large: int
    batch: int
    detail_iterations: int
    poll: float
    timeout: float
    py_spy: Path | None
    py_spy_gil: bool
    quick: bool
    src: Path | None = None


class Meter:
    """CPU seconds of kumo up and of the agents, and PostgreSQL counters, over a phase."""

    def __init__(self, cloud: Cloud) -> None:
        self.cloud = cloud
        self.start()

    def start(self) -> None:
        self.up0 = cpu_seconds(self.cloud.up.pid)
        self.agents0 = sum(cpu_seconds(a.pid) for a in self.cloud.agents)
        self.pg0 = pg_counters(self.cloud.db_url)

    def per_server(self, n: int) -> tuple[dict[str, float], dict[str, float]]:
        up = cpu_seconds(self.cloud.up.pid) - self.up0
        agents = sum(cpu_seconds(a.pid) for a in self.cloud.agents) - self.agents0
        cpu = {"kumo_up_ms": up * 1000 / n, "agents_ms": agents * 1000 / n}
        pg: dict[str, float] = {}
        pg1 = pg_counters(self.cloud.db_url)
        if self.pg0 and pg1:
            pg = {k: (pg1[k] - self.pg0[k]) / n for k in pg1}
        return cpu, pg


@contextlib.contextmanager
def py_spy(opts: Options, cloud: Cloud, name: str) -> Iterator[None]:
    """Sample kumo up with py-spy over a phase (--py-spy DIR): collapsed stacks + summary."""
    if opts.py_spy is None:
        yield
        return
    if not PY_SPY.exists():
        raise BenchError(f"--py-spy needs {PY_SPY} (install py-spy into the venv)")
    opts.py_spy.mkdir(parents=True, exist_ok=True)
    out = opts.py_spy / f"{name}.txt"
    proc = subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(cloud.up.pid),
            "--format",
            "raw",
            "--rate",
            "200",
            "--threads",
            *(["--gil"] if opts.py_spy_gil else []),
            "--output",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(0.5)  # let it attach
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
        summary = summarize_py_spy(out) if out.exists() else "(py-spy wrote nothing)"
        out.with_suffix(".summary.txt").write_text(summary)
        log(f"py-spy samples of kumo up in {out}; summary:\n{summary}")


# Leaf frames that mean the thread was waiting, not running (py-spy counts some as active).
_IDLE_LEAVES = (
    "Condition.wait",
    "_worker (",
    "SyncStream.read",
    "EpollSelector.select",
    "Event.wait",
    "select (",
    "sleep",
    "_wait_for_tstate_lock",
)


def summarize_py_spy(path: Path, top: int = 30) -> str:
    """Busy samples of a py-spy ``--format raw`` file: by endpoint or thread, by library of
    the leaf frame, and kumo functions inclusive."""
    import collections
    import re

    total = busy = 0
    by_place: collections.Counter[str] = collections.Counter()
    by_lib: collections.Counter[str] = collections.Counter()
    by_func: collections.Counter[str] = collections.Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        leaf = frames[-1]
        if any(marker in leaf for marker in _IDLE_LEAVES):
            continue
        busy += n
        place = None
        for i, frame in enumerate(frames[:-1]):
            if frame.startswith(("_run_sync_endpoint", "run_endpoint_function")):
                place = "endpoint " + frames[i + 1].split(" (")[0]
                break
        if place is None:
            place = "thread " + re.sub(r"_\d+$", "", frames[0].split(": ", 1)[-1])
        by_place[place] += n
        lib = re.search(r"\(([\w.\-]+)/", leaf)
        by_lib[lib.group(1) if lib else leaf.split(" (")[0]] += n
        seen = set()
        for frame in frames[1:]:
            if "(kumo/" in frame:
                name = frame.split(" (")[0] + " (" + frame.split("(kumo/")[1].split(":")[0] + ")"
                if name not in seen:
                    seen.add(name)
                    by_func[name] += n
    if not busy:
        return f"{path.name}: {total} samples, none busy"

    def block(title: str, counter: collections.Counter[str], k: int) -> list[str]:
        return [f"-- {title}"] + [
            f"{c:7d} {100 * c / busy:5.1f}%  {name}" for name, c in counter.most_common(k)
        ]

    lines = [f"{path.name}: {total} samples, {busy} busy (leaf not a wait)"]
    lines += block("busy by endpoint or thread", by_place, 15)
    lines += block("busy by library of the leaf frame", by_lib, 10)
    lines += block("kumo functions, inclusive", by_func, top)
    return "\n".join(lines)


class Bench:
    def __init__(self, backend: str, cloud: Cloud, opts: Options, rows: list[Row]) -> None:
        self.backend = backend
        self.cloud = cloud
        self.opts = opts
        self.rows = rows
        token, self.project_id = admin_token(cloud.url, cloud.root / "state")
        self.token = token
        lift_quotas(cloud.db_url, self.project_id)
        self.client = Client(cloud.url, token)
        self.image_id = upload_image(self.client)
        self._serial = 0

    def close(self) -> None:
        self.client.close()

    def name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self._serial}"

    def clients(self, n: int) -> list[Client]:
        return [Client(self.cloud.url, self.token) for _ in range(n)]

    def cleanup(self, ids: set[str]) -> None:
        watch = Watch(self.client)
        for server_id in ids:
            self.client.delete(server_id)
        watch.gone(ids, self.opts.timeout, self.opts.poll)

    # -- one server alone --
    def single(self) -> None:
        runs, posts = [], []
        # Warm-up, untimed: the first server pays for imports and cold caches.
        watch = Watch(self.client)
        sid, _ = self.client.create(self.image_id, self.name("warm"))
        watch.active({sid}, self.opts.timeout, self.opts.poll)
        self.cleanup({sid})
        for _ in range(self.opts.single_runs):
            start = time.perf_counter()
            sid, post = self.client.create(self.image_id, self.name("one"))
            deadline = time.monotonic() + self.opts.timeout
            while True:
                shown = self.client.show(sid) or {}
                if shown.get("status") == "ACTIVE":
                    break
                if shown.get("status") == "ERROR":
                    raise BenchError(f"server went to ERROR: {shown.get('fault')}")
                if time.monotonic() > deadline:
                    raise BenchError(f"one server not ACTIVE in {self.opts.timeout}s: {shown}")
                time.sleep(0.002)
            runs.append((time.perf_counter() - start) * 1000)
            posts.append(post * 1000)
            self.cleanup({sid})
        self.rows.append(
            _row_ms(
                self.backend,
                "single_ms",
                "one server alone, POST to ACTIVE",
                1,
                runs,
                post_p50_ms=percentile(posts, 50),
                post_p99_ms=percentile(posts, 99),
            )
        )

    # -- N one after the other --
    def sequential(self) -> None:
        n = self.opts.sequential
        meter = Meter(self.cloud)
        posts: list[float] = []
        ids: set[str] = set()
        watch = Watch(self.client)
        start = time.perf_counter()
        for _ in range(n):
            sid, post = self.client.create(self.image_id, self.name("seq"))
            ids.add(sid)
            posts.append(post)
        done = watch.active(ids, self.opts.timeout, self.opts.poll)
        cpu, pg = meter.per_server(n)
        rate = n / (done - start)
        self.rows.append(
            _row_rate(
                self.backend,
                "sequential_sps",
                f"{n} servers sequential, first POST to all ACTIVE",
                n,
                [rate],
                post_p50_ms=percentile(posts, 50) * 1000,
                post_p99_ms=percentile(posts, 99) * 1000,
                cpu=cpu,
                pg=pg,
            )
        )
        self.cleanup(ids)

    # -- N from C clients, detail listing, delete --
    def _fan_out(
        self, pool: ThreadPoolExecutor, work: list[Callable[[], list[float]]]
    ) -> list[float]:
        return [x for part in pool.map(lambda fn: fn(), work) for x in part]

    def concurrent(self) -> None:
        n, c = self.opts.concurrent, self.opts.clients
        rates: list[float] = []
        delete_rates: list[float] = []
        posts: list[float] = []
        deletes: list[float] = []
        details: list[float] = []
        costs: dict[str, dict[str, list[float]]] = {}
        made: dict[str, float] = {}  # server id -> POST latency, of the current run
        lock = threading.Lock()

        def keep(phase: str, meter: Meter) -> None:
            cpu, pg = meter.per_server(n)
            for k, v in {**cpu, **{f"pg {k}": v for k, v in pg.items()}}.items():
                costs.setdefault(phase, {}).setdefault(k, []).append(v)

        def spy(run: int, phase: str) -> contextlib.AbstractContextManager[None]:
            if run:
                return contextlib.nullcontext()
            return py_spy(self.opts, self.cloud, f"{self.backend}-{phase}")

        clients = self.clients(c)
        try:
            with ThreadPoolExecutor(c) as pool:
                for run in range(self.opts.runs):
                    names = [f"conc-{run}-{k}" for k in range(n)]
                    made.clear()

                    def creator(client: Client, mine: list[str]) -> Callable[[], list[float]]:
                        def go() -> list[float]:
                            out = []
                            for name in mine:
                                sid, took = client.create(self.image_id, name)
                                with lock:
                                    made[sid] = took
                                out.append(took)
                            return out

                        return go

                    meter = Meter(self.cloud)
                    watch = Watch(self.client)
                    with spy(run, "create"):
                        start = time.perf_counter()
                        posts += self._fan_out(
                            pool, [creator(clients[i], names[i::c]) for i in range(c)]
                        )
                        ids = set(made)
                        done = watch.active(ids, self.opts.timeout, self.opts.poll)
                    keep("create", meter)
                    rates.append(n / (done - start))
                    log(f"{self.backend}: {n} servers from {c} clients: {rates[-1]:.1f} servers/s")

                    details += self.detail_latencies(n, self.opts.detail_iterations)

                    ordered = sorted(ids)

                    def deleter(client: Client, mine: list[str]) -> Callable[[], list[float]]:
                        return lambda: [client.delete(sid) for sid in mine]

                    meter = Meter(self.cloud)
                    watch = Watch(self.client)
                    with spy(run, "delete"):
                        start = time.perf_counter()
                        deletes += self._fan_out(
                            pool, [deleter(clients[i], ordered[i::c]) for i in range(c)]
                        )
                        gone = watch.gone(ids, self.opts.timeout, self.opts.poll)
                    keep("delete", meter)
                    delete_rates.append(n / (gone - start))
                    log(f"{self.backend}: delete {n}: {delete_rates[-1]:.1f} servers/s")
        finally:
            for client in clients:
                client.close()

        def med(phase: str, pg: bool) -> dict[str, float]:
            return {
                k.removeprefix("pg "): statistics.median(v)
                for k, v in costs.get(phase, {}).items()
                if k.startswith("pg ") == pg
            }

        self.rows.append(
            _row_rate(
                self.backend,
                "concurrent_sps",
                f"{n} servers from {c} clients, first POST to all ACTIVE",
                n,
                rates,
                post_p50_ms=percentile(posts, 50) * 1000,
                post_p99_ms=percentile(posts, 99) * 1000,
                cpu=med("create", False),
                pg=med("create", True),
            )
        )
        self.rows.append(
            _row_rate(
                self.backend,
                "delete_sps",
                f"delete those {n} from {c} clients until gone",
                n,
                delete_rates,
                post_p50_ms=percentile(deletes, 50) * 1000,
                post_p99_ms=percentile(deletes, 99) * 1000,
                cpu=med("delete", False),
                pg=med("delete", True),
            )
        )
        self.rows.append(
            _row_ms(
                self.backend,
                "detail_small_p50_ms",
                f"GET /servers/detail with {n} servers",
                n,
                [percentile(details, 50)],
                p50_ms=percentile(details, 50),
                p99_ms=percentile(details, 99),
            )
        )

    def detail_latencies(self, expect: int, iterations: int) -> list[float]:
        self.client.detail()  # warm
        out = []
        for _ in range(iterations):
            count, took = self.client.detail()
            if count != expect:
                raise BenchError(f"/servers/detail listed {count} servers, expected {expect}")
            out.append(took * 1000)
        return out

    # -- 1,000 servers: the listing --
    def large(self) -> None:
        n, batch, c = self.opts.large, self.opts.batch, self.opts.clients
        sizes = [batch] * (n // batch) + ([n % batch] if n % batch else [])
        clients = self.clients(min(c, len(sizes)))
        meter = Meter(self.cloud)
        watch = Watch(self.client)
        start = time.perf_counter()
        try:
            with ThreadPoolExecutor(len(clients)) as pool:
                list(
                    pool.map(
                        lambda ij: clients[ij[0] % len(clients)].create(
                            self.image_id, f"big-{ij[0]}", ij[1]
                        ),
                        enumerate(sizes),
                    )
                )
        finally:
            for client in clients:
                client.close()
        ids = self.client.ids()
        if len(ids) != n:
            raise BenchError(f"{len(ids)} servers listed after creating {n}")
        done = watch.active(ids, self.opts.timeout * 4, max(self.opts.poll, 0.2))
        cpu, pg = meter.per_server(n)
        rate = n / (done - start)
        log(f"{self.backend}: {n} servers in batches of {batch}: {rate:.1f} servers/s to ACTIVE")
        self.rows.append(
            _row_rate(
                self.backend,
                "large_sps",
                f"{n} servers in max_count batches of {batch}, to all ACTIVE",
                n,
                [rate],
                cpu=cpu,
                pg=pg,
            )
        )
        with py_spy(self.opts, self.cloud, f"{self.backend}-detail-{n}"):
            details = self.detail_latencies(n, self.opts.detail_iterations)
        self.rows.append(
            _row_ms(
                self.backend,
                "detail_large_p50_ms",
                f"GET /servers/detail with {n} servers",
                n,
                [percentile(details, 50)],
                p50_ms=percentile(details, 50),
                p99_ms=percentile(details, 99),
            )
        )


def run_backend(backend: str, opts: Options, rows: list[Row]) -> None:
    with backend_run(backend, f"kumo-bench-servers-{backend}-") as (root, db_url):
        log(f"{backend}: starting kumo up and {opts.hosts - 1} agents in {root}")
        started = time.perf_counter()
        cloud = start_cloud(root, db_url, opts.hosts, opts.src)
        try:
            log(f"{backend}: {opts.hosts} hosts up in {time.perf_counter() - started:.1f}s")
            bench = Bench(backend, cloud, opts, rows)
            try:
                bench.single()
                log(f"{backend}: one server: {rows[-1].runs}")
                if opts.sequential:
                    bench.sequential()
                    log(f"{backend}: sequential: {rows[-1].best:.1f} servers/s")
                if opts.concurrent:
                    bench.concurrent()
                if opts.large:
                    bench.large()
            finally:
                bench.close()
            for proc in cloud.all():
                if proc.process.poll() is not None:
                    raise BenchError(f"{proc.name} died during the run:\n{proc.tail()}")
        except BaseException:
            log(f"{backend}: kumo up log tail:\n{cloud.up.tail()}")
            raise
        finally:
            cloud.stop()


# --- output -----------------------------------------------------------------------------


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "servers/s" or (value < 100 and value != int(value)):
        return f"{value:,.2f}" if value < 10 else f"{value:,.1f}"
    return f"{value:,.0f}"


def table(rows: list[Row], command_of: Callable[[Row], str] | None = None) -> list[list[str]]:
    header = [
        "backend",
        "case",
        "unit",
        "kumo best",
        "kumo median",
        "POST p50 ms",
        "POST p99 ms",
        "p99 ms",
        "Nova best / median",
        "target",
        "met",
    ]
    out = [header]
    for r in rows:
        comparable = ISSUE_N.get(r.key) == r.n
        nova = NOVA.get(r.key) if comparable else None
        target = TARGETS.get(r.key) if comparable else None
        met = ""
        if target is not None:
            op, bound = target
            value = r.median
            met = "yes" if (value < bound if op == "<" else value >= bound) else "NO"
        best, median = (r.best, r.median) if len(r.runs) > 1 else (r.best, None)
        nova_text = ""
        if nova is not None:
            nova_text = " / ".join(_fmt(v, r.unit) for v in nova if v is not None)
        out.append(
            [
                r.backend,
                r.case,
                "p50 ms" if r.key.startswith("detail") else r.unit,
                _fmt(best, r.unit),
                _fmt(median, r.unit),
                _fmt(r.post_p50_ms),
                _fmt(r.post_p99_ms),
                _fmt(r.p99_ms),
                nova_text,
                "" if target is None else f"{target[0]} {_fmt(target[1])}",
                met,
            ]
        )
    return out


# The flags that reproduce one row alone (one server alone runs first in every run).
ROW_FLAGS = {
    "single_ms": "--sequential 0 --concurrent 0 --large 0",
    "sequential_sps": "--concurrent 0 --large 0",
    "concurrent_sps": "--sequential 0 --large 0",
    "delete_sps": "--sequential 0 --large 0",
    "detail_small_p50_ms": "--sequential 0 --large 0",
    "large_sps": "--sequential 0 --concurrent 0",
    "detail_large_p50_ms": "--sequential 0 --concurrent 0",
}


def print_markdown(rows: list[Row], file: Any = sys.stdout) -> None:
    """The table for bench/README.md, with the command that reproduces each row."""
    cells = table(rows)
    header = [*cells[0], "reproduce"]
    print("| " + " | ".join(header) + " |", file=file)
    print(
        "| " + " | ".join("---" if i < 3 else "---:" for i in range(len(header))) + " |", file=file
    )
    for r, row in zip(rows, cells[1:], strict=True):
        command = f"`bench/servers.py --backends {r.backend} {ROW_FLAGS.get(r.key, '')}`"
        print("| " + " | ".join([*row, command]) + " |", file=file)


def print_costs(rows: list[Row], file: Any = sys.stdout) -> None:
    costly = [r for r in rows if r.cpu or r.pg]
    if not costly:
        return
    print(
        "\nCost per server (median over runs): CPU ms of kumo up and of the 9 agent processes;",
        file=file,
    )
    print("PostgreSQL: transactions and rows per server (pg_stat_database deltas).", file=file)
    for r in costly:
        parts = [f"{k} {v:.1f}" for k, v in r.cpu.items()]
        parts += [f"pg {k} {v:.1f}" for k, v in r.pg.items() if v]
        print(f"  {r.backend:10} {r.key:16} " + ", ".join(parts), file=file)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="sqlite, postgresql, mariadb (default: the first two, the targets' backends)",
    )
    p.add_argument("--hosts", type=int, default=10, help="hosts: kumo up's agent + N-1 (10)")
    p.add_argument("--runs", type=int, default=3, help="runs of the concurrent case (3)")
    p.add_argument("--single-runs", type=int, default=3, help="runs of one server alone (3)")
    p.add_argument("--sequential", type=int, default=50, help="servers POSTed in turn (50)")
    p.add_argument("--concurrent", type=int, default=200, help="servers from --clients (200)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (8)")
    p.add_argument("--large", type=int, default=1000, help="servers for the big listing (1000)")
    p.add_argument("--batch", type=int, default=100, help="max_count per POST for --large")
    p.add_argument("--detail-iterations", type=int, default=20, help="GETs of /servers/detail")
    p.add_argument("--poll", type=float, default=0.1, help="seconds between status polls")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a wait may take")
    p.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="DIR",
        help="sample kumo up with py-spy in the first create/delete run and the big listing",
    )
    p.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="with --py-spy: sample only the thread holding the GIL (where CPU goes)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short run: 1 run, 20 sequential, 100 concurrent, 300 listed, 10 GETs",
    )
    p.add_argument(
        "--src",
        type=Path,
        default=None,
        metavar="DIR",
        help="run kumo up and the agents from this source tree (PYTHONPATH), e.g. an "
        "exported commit, to compare two versions",
    )
    add_output_options(p)
    args = p.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        p.error(f"unknown backend(s): {', '.join(unknown) or '(none)'}")
    if args.quick:
        given = set(a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:]))
        for flag, attr, value in (
            ("--runs", "runs", 1),
            ("--single-runs", "single_runs", 3),
            ("--sequential", "sequential", 20),
            ("--concurrent", "concurrent", 100),
            ("--large", "large", 300),
            ("--detail-iterations", "detail_iterations", 10),
        ):
            if flag not in given:
                setattr(args, attr, value)
    if args.hosts < 1 or args.runs < 1 or args.single_runs < 1 or args.clients < 1:
        p.error("hosts, runs and clients must be positive")
    args.backend_list = names
    return args


def report(doc: dict[str, Any], markdown: bool) -> None:
    """The tables of one benchmark document (a run just made, or a --json file)."""
    info, opts = doc["machine"], doc["options"]
    rows = [Row(**r) for r in doc["results"]]
    print(
        f"kumo servers bench - {info['date']} - Python {info['python']} - "
        f"{info['cpus']} CPUs (load {info['loadavg_1m']}) - {opts['hosts']} hosts, fake driver"
    )
    if markdown:
        print_markdown(rows)
    else:
        print_table(table(rows))
    print_costs(rows)
    for backend, reason in doc["skipped"].items():
        print(f"SKIP {backend}: {reason}")
    for backend, reason in doc["errors"].items():
        print(f"ERROR {backend}: {reason}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        report(json.loads(args.render.read_text()), args.markdown)
        return 0
    opts = Options(
        backends=args.backend_list,
        hosts=args.hosts,
        runs=args.runs,
        single_runs=args.single_runs,
        sequential=args.sequential,
        concurrent=args.concurrent,
        clients=args.clients,
        large=args.large,
        batch=args.batch,
        detail_iterations=args.detail_iterations,
        poll=args.poll,
        timeout=args.timeout,
        py_spy=args.py_spy,
        py_spy_gil=args.py_spy_gil,
        quick=args.quick,
        src=args.src,
    )
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    for backend in opts.backends:
        try:
            run_backend(backend, opts, rows)
        except BackendUnavailable as exc:
            skipped[backend] = str(exc)
            log(f"{backend}: skipped, not reachable ({exc})")
        except Exception as exc:
            errors[backend] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
            log(f"{backend}: FAILED: {errors[backend]}")

    doc = {
        "machine": machine(),
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
        "nova": NOVA,
        "targets": TARGETS,
        "results": [asdict(r) for r in rows],
        "skipped": skipped,
        "errors": errors,
    }
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        report(doc, args.markdown)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

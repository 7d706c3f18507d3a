"""Token issue and validation benchmark on SQLite and PostgreSQL.

For each backend a throwaway database is migrated and bootstrapped, then measured:

* core: ``auth.authenticate`` (password, project scope) and ``auth.validate`` in a fresh
  ``db.session()`` per call, the way the API does it; plus the two pieces that bound them
  (argon2 ``verify_secret`` alone and Fernet ``codec.decode`` alone);
* http: ``POST`` and ``GET /identity/v3/auth/tokens`` through the ASGI app in-process
  (fastapi ``TestClient``, no sockets);
* concurrency: N threads validating through the core, for throughput.

Run: ``.venv/bin/python bench/tokens.py`` (or ``make bench``); ``--help`` for the flags.
Exits non-zero only when something fails; an unreachable PostgreSQL is a skip.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from kumo.api.app import create_app
from kumo.config import ApiConfig, Config, DatabaseConfig
from kumo.core.bootstrap import bootstrap
from kumo.core.identity import auth
from kumo.core.identity.cache import TokenCache
from kumo.core.identity.common import DEFAULT_DOMAIN_ID
from kumo.core.identity.tokens import TokenCodec
from kumo.core.passwords import verify_secret
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.migrate import upgrade

from _common import BACKENDS, BackendUnavailable, backend_run

ADMIN_USER = "admin"
ADMIN_PASSWORD = "pw"
ADMIN_PROJECT = "admin"
TOKEN_LIFETIME = 3600
IDENTITY = "/identity/v3"


@dataclass
class Result:
    backend: str
    operation: str
    iterations: int
    ops_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_ms: float | None = None
    queries_per_op: float | None = None


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _summarize(
    backend: str,
    operation: str,
    timing: Timing | list[float],
    wall: float | None = None,
    queries: float | None = None,
) -> Result:
    """Latencies in seconds -> a Result. ``wall`` (for concurrent runs) sets ops/s."""
    durations = timing.durations if isinstance(timing, Timing) else timing
    cpu = timing.cpu / len(durations) * 1000 if isinstance(timing, Timing) else None
    ordered = sorted(durations)
    total = wall if wall is not None else sum(durations)
    return Result(
        backend=backend,
        operation=operation,
        iterations=len(durations),
        ops_per_s=len(durations) / total if total > 0 else float("inf"),
        p50_ms=_percentile(ordered, 50) * 1000,
        p99_ms=_percentile(ordered, 99) * 1000,
        mean_ms=statistics.fmean(durations) * 1000,
        cpu_ms=cpu,
        queries_per_op=queries,
    )


@dataclass
class Timing:
    durations: list[float]
    cpu: float  # this thread's CPU seconds over the timed loop (excludes the DB server)


def _timed(fn: Callable[[], object], iterations: int, warmup: int) -> Timing:
    for _ in range(warmup):
        fn()
    durations: list[float] = []
    clock = time.perf_counter
    cpu_start = time.thread_time()
    for _ in range(iterations):
        start = clock()
        fn()
        durations.append(clock() - start)
    return Timing(durations, time.thread_time() - cpu_start)


class QueryCounter:
    """Counts statements the engine sends (BEGIN/COMMIT are not statements here)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.statements: list[str] = []
        self.record = False
        self._lock = threading.Lock()
        event.listen(db.engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *args: Any) -> None:
        statement = args[2]
        with self._lock:
            self.count += 1
            if self.record:
                self.statements.append(" ".join(str(statement).split()))

    def per_op(self, fn: Callable[[], object], iterations: int = 20) -> float:
        fn()
        before = self.count
        for _ in range(iterations):
            fn()
        return (self.count - before) / iterations

    def statements_of(self, fn: Callable[[], object]) -> list[str]:
        fn()
        self.statements = []
        self.record = True
        try:
            fn()
        finally:
            self.record = False
        return list(self.statements)


# --- the benchmark ----------------------------------------------------------------------


def auth_body() -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": ADMIN_USER,
                        "domain": {"id": DEFAULT_DOMAIN_ID},
                        "password": ADMIN_PASSWORD,
                    }
                },
            },
            "scope": {"project": {"name": ADMIN_PROJECT, "domain": {"id": DEFAULT_DOMAIN_ID}}},
        }
    }


@dataclass
class Options:
    iterations: int
    issue_iterations: int
    warmup: int
    threads: int
    http: bool
    profile: bool


def run_backend(backend: str, url: str, opts: Options, out: list[Result]) -> dict[str, Any]:
    """Measure one backend; returns profiling notes (statements per validation etc.)."""
    notes: dict[str, Any] = {}
    db = Database(url)
    try:
        upgrade(db)
        with db.session() as session:
            bootstrap(
                session,
                ADMIN_USER,
                ADMIN_PASSWORD,
                ADMIN_PROJECT,
                "demo",
                "http://bench",
                "RegionOne",
            )
        with db.session() as session:
            codec: TokenCodec = auth.load_codec(session)
            password_hash = _password_hash(session)
        counter = QueryCounter(db)
        body = auth_body()
        issue_warmup = max(1, min(opts.warmup, opts.issue_iterations // 10))

        def issue() -> str:
            with db.session() as session:
                return auth.authenticate(session, codec, body, TOKEN_LIFETIME)

        token = issue()

        def validate() -> auth.ValidatedToken:
            with db.session() as session:
                return auth.validate(session, codec, token)

        cache = TokenCache()

        def validate_cached() -> auth.ValidatedToken:
            # What the API does: a repeat validation at an unchanged identity revision is
            # one single-row read plus the Fernet decode already done once.
            with db.session() as session:
                return auth.validate(session, codec, token, cache)

        def argon2_only() -> None:
            if not verify_secret(password_hash, ADMIN_PASSWORD):
                raise RuntimeError("password does not verify")

        def decode_only() -> None:
            codec.decode(token)

        # Sanity: the token is valid and project-scoped before anything is timed.
        checked = validate()
        if checked.project is None or not checked.roles:
            raise RuntimeError("bench token is not project-scoped with roles")

        out.append(
            _summarize(
                backend,
                "core issue (authenticate)",
                _timed(issue, opts.issue_iterations, issue_warmup),
                queries=counter.per_op(issue, 5),
            )
        )
        out.append(
            _summarize(
                backend,
                "core argon2 verify only",
                _timed(argon2_only, opts.issue_iterations, issue_warmup),
            )
        )
        out.append(
            _summarize(
                backend,
                "core validate, uncached",
                _timed(validate, opts.iterations, opts.warmup),
                queries=counter.per_op(validate),
            )
        )
        out.append(
            _summarize(
                backend,
                "core validate, cached (as the API)",
                _timed(validate_cached, opts.iterations, opts.warmup),
                queries=counter.per_op(validate_cached),
            )
        )
        out.append(
            _summarize(
                backend,
                "core Fernet decode only",
                _timed(decode_only, opts.iterations, opts.warmup),
            )
        )
        notes["validate_statements"] = counter.statements_of(validate)

        if opts.threads > 1:
            out.append(_concurrent(backend, validate, opts))

        if opts.http:
            _http(backend, db, url, body, opts, counter, out)

        if opts.profile:
            notes["validate_profile"] = _profile(validate, opts.iterations)
    finally:
        db.dispose()
    return notes


def _password_hash(session: Session) -> str:
    value = session.scalars(
        select(m.User.password_hash).where(
            m.User.name == ADMIN_USER, m.User.domain_id == DEFAULT_DOMAIN_ID
        )
    ).one()
    return str(value)


def _concurrent(backend: str, validate: Callable[[], object], opts: Options) -> Result:
    per_thread = max(1, opts.iterations // opts.threads)
    barrier = threading.Barrier(opts.threads)

    def worker() -> list[float]:
        for _ in range(min(opts.warmup, per_thread)):
            validate()
        barrier.wait()
        durations: list[float] = []
        for _ in range(per_thread):
            start = time.perf_counter()
            validate()
            durations.append(time.perf_counter() - start)
        return durations

    with ThreadPoolExecutor(opts.threads) as pool:
        futures = [pool.submit(worker) for _ in range(opts.threads)]
        # The wall clock starts once every worker is past warm-up (the barrier).
        start = time.perf_counter()
        results = [f.result() for f in futures]
        wall = time.perf_counter() - start
    durations = [d for r in results for d in r]
    # Threads finishing warm-up at different times make the wall clock a bit long at most,
    # so ops/s is a lower bound.
    return _summarize(backend, f"core validate x{opts.threads} threads", durations, wall=wall)


def _http(
    backend: str,
    db: Database,
    url: str,
    body: dict[str, Any],
    opts: Options,
    counter: QueryCounter,
    out: list[Result],
) -> None:
    with tempfile.TemporaryDirectory(prefix="kumo-bench-state-") as state_dir:
        config = Config(
            state_dir=Path(state_dir),
            api=ApiConfig(public_url="http://bench"),
            database=DatabaseConfig(url=url),
        )
        app = create_app(config, db)
        with TestClient(app, base_url="http://bench") as client:

            def post() -> str:
                resp = client.post(f"{IDENTITY}/auth/tokens", json=body)
                if resp.status_code != 201:
                    raise RuntimeError(f"POST /auth/tokens: {resp.status_code} {resp.text}")
                return resp.headers["X-Subject-Token"]

            token = post()
            headers = {"X-Auth-Token": token, "X-Subject-Token": token}

            def get(query: str = "") -> None:
                resp = client.get(f"{IDENTITY}/auth/tokens{query}", headers=headers)
                if resp.status_code != 200:
                    raise RuntimeError(f"GET /auth/tokens: {resp.status_code} {resp.text}")

            def get_nocatalog() -> None:
                get("?nocatalog")

            issue_warmup = max(1, min(opts.warmup, opts.issue_iterations // 10))
            # No cpu ms/op here: TestClient runs the app in other threads.
            out.append(
                _summarize(
                    backend,
                    "http POST /auth/tokens",
                    _timed(post, opts.issue_iterations, issue_warmup).durations,
                    queries=counter.per_op(post, 5),
                )
            )
            out.append(
                _summarize(
                    backend,
                    "http GET /auth/tokens",
                    _timed(get, opts.iterations, opts.warmup).durations,
                    queries=counter.per_op(get),
                )
            )
            out.append(
                _summarize(
                    backend,
                    "http GET /auth/tokens?nocatalog",
                    _timed(get_nocatalog, opts.iterations, opts.warmup).durations,
                    queries=counter.per_op(get_nocatalog),
                )
            )


def _profile(fn: Callable[[], object], iterations: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        fn()
    profiler.disable()
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("cumulative").print_stats(35)
    return buf.getvalue()


# --- output -----------------------------------------------------------------------------


def print_table(results: list[Result], file: Any = sys.stdout) -> None:
    headers = ("backend", "operation", "n", "ops/s", "p50 ms", "p99 ms", "cpu ms/op", "queries/op")
    rows = [
        (
            r.backend,
            r.operation,
            str(r.iterations),
            f"{r.ops_per_s:,.0f}",
            f"{r.p50_ms:.3f}",
            f"{r.p99_ms:.3f}",
            "" if r.cpu_ms is None else f"{r.cpu_ms:.3f}",
            "" if r.queries_per_op is None else f"{r.queries_per_op:g}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    right = {2, 3, 4, 5, 6, 7}

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in rows:
        print(line(row), file=file)


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--backends",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql, mariadb (default: the first two)",
    )
    p.add_argument("--iterations", type=int, default=2000, help="validations timed per case")
    p.add_argument(
        "--issue-iterations",
        type=int,
        default=200,
        help="issues timed per case (argon2 makes each one slow)",
    )
    p.add_argument("--warmup", type=int, default=50, help="untimed calls before each case")
    p.add_argument("--threads", type=int, default=4, help="threads for concurrent validation")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP (TestClient) cases")
    p.add_argument(
        "--profile",
        action="store_true",
        help="cProfile core validation and print the hot spots and its SQL statements",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in BACKENDS]
    if unknown or not names:
        p.error(f"unknown backend(s): {', '.join(unknown) or '(none)'}")
    if args.iterations < 1 or args.issue_iterations < 1 or args.threads < 1 or args.warmup < 0:
        p.error("iterations and threads must be positive, warmup non-negative")
    args.backend_list = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    opts = Options(
        iterations=args.iterations,
        issue_iterations=args.issue_iterations,
        warmup=args.warmup,
        threads=args.threads,
        http=not args.no_http,
        profile=args.profile,
    )
    results: list[Result] = []
    skipped: dict[str, str] = {}
    errors: dict[str, str] = {}
    notes: dict[str, dict[str, Any]] = {}
    log = sys.stderr
    for backend in args.backend_list:
        try:
            with backend_run(backend, "kumo-bench-tokens-") as (_, url):
                print(f"# {backend}: measuring ...", file=log, flush=True)
                notes[backend] = run_backend(backend, url, opts, results)
        except BackendUnavailable as exc:
            skipped[backend] = str(exc)
            print(f"# {backend}: skipped, not reachable ({exc})", file=log)
        except Exception as exc:
            errors[backend] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=log)
            print(f"# {backend}: FAILED: {errors[backend]}", file=log)

    if args.json:
        doc = {
            "machine": machine(),
            "options": asdict(opts),
            "results": [asdict(r) for r in results],
            "skipped": skipped,
            "errors": errors,
            "validate_statements": {b: n.get("validate_statements", []) for b, n in notes.items()},
        }
        json.dump(doc, sys.stdout, indent=2)
        print()
    else:
        info = machine()
        print(
            f"kumo token bench - {info['date']} - Python {info['python']} - "
            f"{info['cpus']} CPUs (load {info['loadavg_1m']}) - {info['platform']}"
        )
        print_table(results)
        for backend, reason in skipped.items():
            print(f"SKIP {backend}: {reason}")
        for backend, reason in errors.items():
            print(f"ERROR {backend}: {reason}")
    if opts.profile:
        for backend, n in notes.items():
            print(f"\n## {backend}: SQL statements in one core validate", file=log)
            for i, stmt in enumerate(n.get("validate_statements", []), 1):
                print(f"{i}. {stmt}", file=log)
            if "validate_profile" in n:
                print(f"\n## {backend}: cProfile of core validate", file=log)
                print(n["validate_profile"], file=log)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

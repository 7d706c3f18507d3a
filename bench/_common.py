"""Helpers shared by the benchmarks: the throwaway databases they run on, timing, a real
``kumo up`` and its processes, output.

Processes are started in their own session (so a hung one can be killed with its group)
and stopped by PID; nothing here looks processes up by name.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from sqlalchemy import create_engine, delete, text
from sqlalchemy.exc import DBAPIError

from kumo.db import models as m
from kumo.db.engine import Database, normalize_url

BIN = Path(sys.executable).parent
KUMO = str(BIN / "kumo")
START_DEADLINE = 60.0


class BenchError(Exception):
    pass


def add_output_options(p: argparse.ArgumentParser) -> None:
    """--json, --markdown and --render FILE, the same for every benchmark: a run's
    JSON document can be turned into the README's tables later."""
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    p.add_argument("--render", type=Path, metavar="FILE", help="print the tables of a --json file")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.01) -> float:
    """Poll ``check`` until it is true; the seconds it took, or BenchError after
    ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise BenchError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - start


def log(message: str) -> None:
    print(f"# {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that could point at another cloud."""
    env = {
        k: v for k, v in os.environ.items() if not (k.startswith("KUMO_") or k.startswith("OS_"))
    }
    # The in-memory datapath unless a bench asks for the real one (and tears it down):
    # a bench's cloud leaves nothing behind in the kernel.
    env["KUMO_AGENT_NETWORK_DRIVER"] = "fake"
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (Linux /proc), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(load[0], 2),
        "loadavg": [round(v, 2) for v in load],
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# --- databases --------------------------------------------------------------------------
# A throwaway database per run on the machine's servers (DESIGN.md: PostgreSQL
# 127.0.0.1:5432 user postgres, MariaDB 127.0.0.1:3306 root), dropped after it; SQLite in
# the run's state directory. ``BACKENDS[name](root)`` is a context manager of its URL.

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
MARIADB_SERVER = "mysql://root@127.0.0.1:3306"


class BackendUnavailable(Exception):
    """The database server is not there: a bench skips that backend."""


@contextlib.contextmanager
def sqlite_backend(root: Path) -> Iterator[str]:
    yield f"sqlite:///{root / 'state' / 'kumo.db'}"


@contextlib.contextmanager
def postgresql_backend(root: Path) -> Iterator[str]:
    name = f"kumo_bench_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        raise BackendUnavailable(str(exc).strip().splitlines()[0]) from exc
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    finally:
        admin.close()


@contextlib.contextmanager
def mariadb_backend(root: Path) -> Iterator[str]:
    name = f"kumo_bench_{secrets.token_hex(6)}"
    admin = create_engine(
        normalize_url(MARIADB_SERVER + "/"), isolation_level="AUTOCOMMIT", pool_pre_ping=True
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    except DBAPIError as exc:
        admin.dispose()
        raise BackendUnavailable(str(exc.orig).strip().splitlines()[0]) from exc
    try:
        yield f"{MARIADB_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


BACKENDS: dict[str, Callable[[Path], Any]] = {
    "sqlite": sqlite_backend,
    "postgresql": postgresql_backend,
    "mariadb": mariadb_backend,
}


@contextlib.contextmanager
def backend_run(backend: str, prefix: str) -> Iterator[tuple[Path, str]]:
    """One backend's run: a temporary directory (with its ``state`` directory) and the URL
    of a throwaway database of ``backend``, both gone after the block. BackendUnavailable
    when that database server is not there (the bench skips the backend)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        (root / "state").mkdir()
        with BACKENDS[backend](root) as url:
            yield root, url


def database_config(db_url: str) -> str:
    """The kumo.toml lines that point ``kumo up`` at ``db_url`` (none for SQLite: ``kumo
    up``'s own default is the state directory's kumo.db, where sqlite_backend puts it)."""
    return "" if db_url.startswith("sqlite") else f'[database]\nurl = "{db_url}"\n'


def lift_quotas(db_url: str, project_id: str) -> None:
    """No os-quota-sets yet: write the admin project's limits directly (-1 is unlimited)."""
    db = Database(db_url)
    try:
        with db.session() as session:
            session.execute(delete(m.QuotaLimit).where(m.QuotaLimit.project_id == project_id))
            for resource in ("instances", "cores", "ram"):
                session.add(m.QuotaLimit(project_id=project_id, resource=resource, hard_limit=-1))
    finally:
        db.dispose()


# --- timing -----------------------------------------------------------------------------


def timed(fn: Callable[[], object], iterations: int, warmup: int) -> tuple[list[float], float]:
    """Wall-clock durations of each call, and this process's CPU seconds per call (it leaves
    out a database server's own work, and the waits for a CPU on a busy machine)."""
    for _ in range(warmup):
        fn()
    durations = []
    cpu = time.process_time()
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        durations.append(time.perf_counter() - start)
    return durations, (time.process_time() - cpu) / iterations


def latency_ms(seconds: list[float]) -> dict[str, float]:
    """p50 and p99 of ``seconds``, in milliseconds as the results tables give them."""
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p99_ms": round(percentile(seconds, 99) * 1000, 1),
    }


# --- processes --------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """SIGINT by PID (a clean stop); SIGKILL of its own process group if it hangs."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)  # its pgid is its pid: start_new_session
            self.process.wait(10)


def spawn(name: str, cmd: list[str], env: dict[str, str], log_path: Path) -> Proc:
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    return Proc(name, process, log_path)


def start_up(
    root: Path, env: dict[str, str], config_text: str = "", deadline: float = START_DEADLINE
) -> tuple[Proc, str]:
    """``kumo up`` with ``--state-dir root/state`` (and ``--config root/kumo.toml`` when
    ``config_text``) on a free loopback port; returns it and its URL once the API answers.
    The caller stops it (``Proc.stop``), also when this raises."""
    state = root / "state"
    state.mkdir(parents=True, exist_ok=True)
    cmd = [KUMO, "--state-dir", str(state)]
    if config_text:
        config = root / "kumo.toml"
        config.write_text(config_text)
        cmd += ["--config", str(config)]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    up = spawn("kumo up", [*cmd, "up", "--listen", f"127.0.0.1:{port}"], env, root / "up.log")
    try:
        wait_answering(up, url, deadline)
    except BaseException:
        up.stop()
        raise
    return up, url


def wait_answering(up: Proc, url: str, deadline: float = START_DEADLINE) -> None:
    end = time.monotonic() + deadline
    while True:
        if up.process.poll() is not None:
            raise BenchError(f"kumo up exited with {up.process.returncode}:\n{up.tail()}")
        try:
            if httpx.get(f"{url}/identity", timeout=2).status_code == 300:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > end:
            raise BenchError(f"kumo up did not answer in {deadline}s:\n{up.tail()}")
        time.sleep(0.1)


def admin_token(url: str, state: Path) -> tuple[str, str]:
    """A token scoped to project admin (password from STATE/admin-password); (token, project)."""
    password = (state / "admin-password").read_text().strip()
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    resp = httpx.post(f"{url}/identity/v3/auth/tokens", json=body, timeout=30)
    if resp.status_code != 201:
        raise BenchError(f"POST /auth/tokens: {resp.status_code} {resp.text[:300]}")
    return resp.headers["X-Subject-Token"], str(resp.json()["token"]["project"]["id"])


# --- output -----------------------------------------------------------------------------


def print_table(cells: list[list[str]], file: Any = sys.stdout, left: int = 3) -> None:
    """Aligned columns: the first ``left`` to the left, the rest (numbers) to the right."""
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for k, row in enumerate(cells):
        print(
            "  ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ),
            file=file,
        )
        if k == 0:
            print("  ".join("-" * w for w in widths), file=file)

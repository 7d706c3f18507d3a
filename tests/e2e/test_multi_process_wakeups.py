"""Several kumo processes on one PostgreSQL or MariaDB database, as a multi-host cloud runs
them: a request written through one API copy wakes the agent that long-polls another at
once (kumo.db.wakeup_relay: LISTEN/NOTIFY on PostgreSQL, a polled table on MariaDB),
instead of at its next periodic resync (20 s).

`kumo up --no-agent` is API copy 1 with the controller; `kumo serve api` on the same
database and state directory is API copy 2; one `kumo serve agent` (fake driver) talks
only to copy 2. Servers are created through copy 1: the controller, in copy 1's process,
places them and notifies the host's topic there; only the relay tells copy 2. A console
read through copy 1 is asked of that agent the same way.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from kumo.db.engine import normalize_url

from computeapi import SERVERS, Api, start_agent
from kumoproc import (
    KUMO,
    clean_env,
    free_port,
    in_ci,
    kill_group,
    start_cloud,
    stop_process,
    wait_for,
)

WOKEN_WITHIN = 8.0  # seconds to ACTIVE: well under the agent's 20 s long-poll
SERVERS_ADMIN = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432",
    "mariadb": "mysql://root@127.0.0.1:3306",
}
# Processes relaying wake-ups: PostgreSQL's listening connections, MariaDB's heartbeat rows.
LISTENERS = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND query LIKE 'LISTEN kumo_wakeup%'",
    "mariadb": "SELECT count(*) FROM wakeup_listeners",
}


@dataclass
class CloudDatabase:
    backend: str
    url: str

    def listeners(self) -> int:
        """Processes of this cloud relaying wake-ups."""
        engine = create_engine(normalize_url(self.url))
        try:
            with engine.connect() as conn:
                return int(conn.execute(text(LISTENERS[self.backend])).scalar_one())
        except DBAPIError:
            return 0  # the schema is not there yet
        finally:
            engine.dispose()


@pytest.fixture(params=["postgresql", "mariadb"])
def cloud_db(request: pytest.FixtureRequest) -> Iterator[CloudDatabase]:
    """A fresh database on a backend that relays wake-ups between processes."""
    backend = str(request.param)
    name = f"kumo_test_{secrets.token_hex(6)}"
    server = SERVERS_ADMIN[backend]
    admin_db = "/postgres" if backend == "postgresql" else "/"
    admin = create_engine(normalize_url(server + admin_db), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        admin.dispose()
        if in_ci():
            pytest.fail(f"{backend} is not reachable ({exc}); CI=true requires it")
        pytest.skip(f"{backend} is not reachable: {exc}")
    if backend == "postgresql":
        create = f'CREATE DATABASE "{name}"'
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        create = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        drop = f"DROP DATABASE IF EXISTS `{name}`"
    try:
        with admin.connect() as conn:
            conn.execute(text(create))
        try:
            yield CloudDatabase(backend, f"{server}/{name}")
        finally:
            with admin.connect() as conn:
                conn.execute(text(drop))
    finally:
        admin.dispose()


@contextlib.contextmanager
def serve_api(state: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`kumo serve api` on a free port until the block ends; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [KUMO, "--state-dir", str(state), "serve", "api", "--listen", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:

        def answers() -> bool:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{url}/identity", timeout=2).status_code == 300
            return False

        wait_for(answers, 60, f"kumo serve api answering ({log})")
        yield url
        assert stop_process(process) == 0, log.read_text()
    finally:
        kill_group(process)


def test_a_request_through_one_api_copy_wakes_an_agent_on_another(
    tmp_path: Path, cloud_db: CloudDatabase
) -> None:
    state = tmp_path / "state"
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake", KUMO_DATABASE_URL=cloud_db.url)
    first = start_cloud(state, "--no-agent", env=env)
    agent = None
    try:
        with serve_api(state, env, tmp_path / "api-2.log") as second_url:
            wait_for(lambda: cloud_db.listeners() == 2, 30, "both API processes relaying")
            agent_log = tmp_path / "agent.log"
            agent = start_agent(
                tmp_path / "agent-state", second_url, state / "host-credential", "far-host",
                agent_log, KUMO_COMPUTE_HYPERVISOR="fake",
            )  # fmt: skip
            api = Api(first.url, first.admin_password)
            image = api.image_id()

            def host_up() -> bool:
                return any(h["state"] == "up" for h in api.hypervisors())

            wait_for(host_up, 60, f"the agent registered through API copy 2 ({agent_log})")
            # The first server may meet the agent's first (immediate) poll; by the time it
            # is ACTIVE the agent waits in a long-poll on copy 2, where only a relayed
            # wake-up can reach it before the poll's 20 s are up.
            for name in ("warm-up", "woken"):
                created = time.monotonic()
                resp = api.create_server(name, image)
                assert resp.status_code == 202, resp.text
                server_id = resp.json()["server"]["id"]
                settled = api.wait_settled([server_id], 60)[server_id]
                took = time.monotonic() - created
                assert settled["status"] == "ACTIVE", settled
            assert took < WOKEN_WITHIN, f"{took:.1f}s: the agent was not woken ({agent_log})"
            # A console read through copy 1 asks the agent polling copy 2 for a fresh copy
            # (its periodic post comes only every 30 s): the guest's own lines are there.
            resp = api.client.post(
                f"{SERVERS}/{server_id}/action", json={"os-getConsoleOutput": {"length": 5}}
            )
            assert resp.status_code == 200, resp.text
            assert "kumo-guest" in resp.json()["output"], resp.json()
            api.client.delete(f"{SERVERS}/{server_id}")
            api.wait_gone(server_id)
            api.close()
    finally:
        if agent is not None:
            stop_process(agent)
            kill_group(agent)
        assert first.stop() == 0, first.output()
    assert "Traceback" not in first.output(), first.output()

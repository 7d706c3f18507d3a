"""Several kumo processes on one PostgreSQL database, as a multi-host cloud runs them: a
request written through one API copy wakes the agent that long-polls another at once
(LISTEN/NOTIFY, kumo.db.notify_relay), instead of at its next periodic resync (20 s).

`kumo up --no-agent` is API copy 1 with the controller; `kumo serve api` on the same
database and state directory is API copy 2; one `kumo serve agent` (fake driver) talks
only to copy 2. Servers are created through copy 1: the controller, in copy 1's process,
places them and notifies the host's topic there; only the relay tells copy 2. A console
read through copy 1 is asked of that agent the same way.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql

from computeapi import SERVERS, Api, start_agent
from kumoproc import KUMO, clean_env, free_port, kill_group, start_cloud, stop_process, wait_for

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
WOKEN_WITHIN = 8.0  # seconds to ACTIVE: well under the agent's 20 s long-poll


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"kumo_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is not reachable ({exc}); CI=true requires it")
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(drop)
    finally:
        admin.close()


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


def listeners(pg_url: str) -> int:
    """Connections of this database listening for relayed wake-ups: one per process."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND query LIKE 'LISTEN kumo_wakeup%'"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_request_through_one_api_copy_wakes_an_agent_on_another(
    tmp_path: Path, pg_url: str
) -> None:
    state = tmp_path / "state"
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake", KUMO_DATABASE_URL=pg_url)
    first = start_cloud(state, "--no-agent", env=env)
    agent = None
    try:
        with serve_api(state, env, tmp_path / "api-2.log") as second_url:
            wait_for(lambda: listeners(pg_url) == 2, 30, "both API processes listening")
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

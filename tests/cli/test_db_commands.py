"""`kumo db version|upgrade|check|backup|restore` as an operator runs them, on SQLite,
PostgreSQL and MariaDB."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from kumo.db import migrate
from kumo.db.engine import Database

from kumoproc import Result, in_ci, kumo, start_cloud, stop_process

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
HOST_NAME = "pre-upgrade-host"


def skip_or_fail(reason: str) -> None:
    """Skip with the reason on a laptop; fail in CI, where every backend must be present."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def head_revision() -> str:
    return migrate.status(Database("sqlite://")).head


def k(state_dir: Path, *args: str, config: Path | None = None) -> Result:
    prefix = ["--state-dir", str(state_dir)]
    if config is not None:
        prefix += ["--config", str(config)]
    return kumo(*prefix, *args)


def ok(result: Result) -> Result:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def version_row(state_dir: Path, config: Path | None = None) -> dict[str, Any]:
    rows = ok(k(state_dir, "db", "version", "--format", "json", config=config)).json()
    assert isinstance(rows, list) and len(rows) == 1
    return rows[0]


# --- SQLite: the whole operator story on one state directory -----------------------------


def test_sqlite_upgrade_check_repair_backup_restore(state_dir: Path) -> None:
    head = head_revision()
    db_file = state_dir / "kumo.db"

    row = version_row(state_dir)
    assert row["current"] is None
    assert row["head"] == head
    assert head in row["pending"]

    upgraded = ok(k(state_dir, "db", "upgrade"))
    assert f"database upgraded from empty to {head}" in upgraded.stdout
    assert "backup written" not in upgraded.stdout  # nothing to keep in an empty database
    assert list((state_dir / "backups").iterdir()) == []

    row = version_row(state_dir)
    assert row["current"] == head
    assert row["pending"] == "-"
    assert "nothing to upgrade" in ok(k(state_dir, "db", "upgrade")).stdout

    checked = ok(k(state_dir, "db", "check"))
    assert "consistent" in checked.stdout

    # Let `kumo up` bootstrap the identity content, then break an invariant behind its back.
    cloud = start_cloud(state_dir, "--no-agent")
    assert stop_process(cloud.process) == 0, cloud.output()
    ghost_user, ghost_project = uuid.uuid4().hex, uuid.uuid4().hex
    with sqlite3.connect(db_file) as conn:
        (role_id,) = conn.execute("SELECT id FROM roles WHERE name = 'member'").fetchone()
        conn.execute(
            "INSERT INTO role_assignments "
            "(actor_type, actor_id, target_type, target_id, role_id, inherited) "
            "VALUES ('user', ?, 'project', ?, ?, 0)",
            (ghost_user, ghost_project, role_id),
        )
    conn.close()

    found = k(state_dir, "db", "check", "--format", "json")
    assert found.returncode == 1, found.stdout + found.stderr
    problems = found.json()
    assert isinstance(problems, list) and len(problems) == 1, problems
    assert problems[0]["check"] == "orphaned role assignments"
    assert ghost_user in problems[0]["problem"]
    assert problems[0]["repair"] == "kumo db check --repair"
    table = k(state_dir, "db", "check")
    assert table.returncode == 1
    assert "1 problem" in table.stdout
    assert "orphaned" in table.stdout  # the table may wrap the rest

    repaired = ok(k(state_dir, "db", "check", "--repair", "--format", "json"))
    assert [p["repair"] for p in repaired.json()] == ["repaired"]
    assert "consistent" in ok(k(state_dir, "db", "check")).stdout

    # Backup, lose data, restore.
    printed = ok(k(state_dir, "db", "backup")).stdout.strip()
    backup = Path(printed)
    assert backup.is_file(), printed
    assert backup.parent == state_dir / "backups"
    with sqlite3.connect(db_file) as conn:
        conn.execute("DELETE FROM projects WHERE name = 'demo'")
    conn.close()
    restored = ok(k(state_dir, "db", "restore", str(backup), "--yes"))
    assert "restored" in restored.stdout
    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT count(*) FROM projects WHERE name = 'demo'").fetchone() == (1,)
    conn.close()
    assert "consistent" in ok(k(state_dir, "db", "check")).stdout

    missing = k(state_dir, "db", "restore", str(state_dir / "no-such-backup"), "--yes")
    assert missing.returncode == 2
    assert "does not exist" in missing.err


def test_check_refuses_an_empty_database(state_dir: Path) -> None:
    result = k(state_dir, "db", "check")
    assert result.returncode == 2
    assert "kumo db upgrade" in result.err


# --- upgrade from the previous migration, on every backend ---------------------------------


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request: pytest.FixtureRequest, state_dir: Path) -> Iterator[str]:
    backend = request.param
    name = f"kumo_cli_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        state_dir.mkdir(parents=True)
        yield f"sqlite:///{state_dir / 'other.db'}"
    elif backend == "postgresql":
        if shutil.which("pg_dump") is None:
            skip_or_fail("pg_dump is not installed (apt-get install postgresql-client)")
        import psycopg

        try:
            admin = psycopg.connect(PG_ADMIN, autocommit=True)
        except psycopg.OperationalError as exc:
            skip_or_fail(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
        with admin:
            admin.execute(f'CREATE DATABASE "{name}"')
            try:
                yield f"postgresql://postgres@127.0.0.1:5432/{name}"
            finally:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        if shutil.which("mysqldump") is None:
            skip_or_fail("mysqldump is not installed (apt-get install mariadb-client)")
        import pymysql

        try:
            admin = pymysql.connect(host="127.0.0.1", port=3306, user="root", connect_timeout=3)
        except pymysql.err.OperationalError as exc:
            skip_or_fail(f"MariaDB is not reachable at 127.0.0.1:3306: {exc}")
        try:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            try:
                yield f"mysql://root@127.0.0.1:3306/{name}"
            finally:
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        finally:
            admin.close()


def test_upgrade_from_previous_migration_backs_up_first(
    database_url: str, state_dir: Path, tmp_path: Path
) -> None:
    head = head_revision()
    db = Database(database_url)
    try:
        migrate.upgrade(db, "0002")
        hosts = sa.Table(
            "hosts",
            sa.MetaData(),
            *(sa.Column(c, sa.JSON) for c in ("agent_api_versions", "capabilities", "inventory")),
            autoload_with=db.engine,
        )
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        with db.engine.begin() as conn:
            conn.execute(
                hosts.insert().values(
                    id=str(uuid.uuid4()),
                    name=HOST_NAME,
                    enabled=True,
                    disabled_reason=None,
                    agent_version="0.0.1",
                    agent_api_versions=["v1"],
                    capabilities={},
                    inventory={"vcpus": 4, "memory_mb": 2048},
                    registered_at=now,
                    last_heartbeat_at=now,
                    version=1,
                )
            )
    finally:
        db.dispose()

    config = tmp_path / "kumo.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n')

    row = version_row(state_dir, config)
    assert row["current"] == "0002"
    assert row["head"] == head

    refused = k(state_dir, "db", "check", config=config)
    assert refused.returncode == 2
    assert "kumo db upgrade" in refused.err

    upgraded = ok(k(state_dir, "db", "upgrade", config=config))
    match = re.search(r"backup written to (\S+)", upgraded.stdout)
    assert match, upgraded.stdout
    backup = Path(match.group(1))
    assert backup.is_file()
    assert backup.stat().st_size > 0
    assert backup.parent == state_dir / "backups"
    expected_suffix = {"sqlite": ".sqlite", "postgresql": ".pgdump", "mysql": ".sql"}
    assert backup.suffix == expected_suffix[database_url.split(":")[0]]
    assert f"database upgraded from 0002 to {head}" in upgraded.stdout

    assert version_row(state_dir, config)["current"] == head
    assert "consistent" in ok(k(state_dir, "db", "check", config=config)).stdout

    hosts_json = ok(k(state_dir, "host", "list", "--format", "json", config=config)).json()
    assert [h["name"] for h in hosts_json] == [HOST_NAME]
    assert hosts_json[0]["vcpus"] == 4

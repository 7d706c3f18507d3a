"""`kumo upgrade check`: go or no-go for an upgrade, as an operator runs it (SQLite)."""

from __future__ import annotations

import uuid
from pathlib import Path

from kumo.db import migrate
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.types import utcnow

from kumoproc import Result, kumo

OLD_HOST = "ancient-host"


def k(state_dir: Path, *args: str) -> Result:
    return kumo("--state-dir", str(state_dir), *args)


def ok(result: Result) -> Result:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def findings(state_dir: Path) -> tuple[int, dict[str, dict[str, str]]]:
    result = k(state_dir, "upgrade", "check", "--format", "json")
    rows = result.json()
    assert isinstance(rows, list), result.stdout
    return result.returncode, {row["check"]: row for row in rows}


def add_host(state_dir: Path, name: str, api_versions: list[str]) -> None:
    """A host row as an agent of another release would have left it (register() refuses an
    agent speaking no API this release serves, so the row is written directly)."""
    db = Database(f"sqlite:///{state_dir / 'kumo.db'}")
    try:
        with db.session() as session:
            now = utcnow()
            session.add(
                m.Host(
                    id=str(uuid.uuid4()),
                    name=name,
                    agent_version="0.0.1",
                    agent_api_versions=api_versions,
                    capabilities={},
                    inventory={"vcpus": 2, "memory_mb": 1024},
                    registered_at=now,
                    last_heartbeat_at=now,
                )
            )
    finally:
        db.dispose()


def test_upgrade_check_story(state_dir: Path) -> None:
    head = migrate.status(Database("sqlite://")).head

    # A fresh state directory: nothing applied yet, which is a go.
    fresh = ok(k(state_dir, "upgrade", "check"))
    assert "expand migrations" in " ".join(fresh.stdout.split())
    assert "NO-GO" not in fresh.stdout
    code, rows = findings(state_dir)
    assert code == 0
    assert rows["schema"]["result"] == "ok"
    assert rows["schema"]["detail"].startswith("at empty;")
    assert "expand migrations to apply with `kumo db upgrade`" in rows["schema"]["detail"]
    assert rows["backup space"]["result"] == "ok"
    assert not any(name.startswith("host ") for name in rows)

    ok(k(state_dir, "db", "upgrade"))
    code, rows = findings(state_dir)
    assert code == 0, rows
    assert rows["schema"]["detail"] == f"at {head}, up to date"
    assert "up to date" in ok(k(state_dir, "upgrade", "check")).stdout

    # A host whose agent speaks a current API version is a go.
    add_host(state_dir, "current-host", ["v1"])
    code, rows = findings(state_dir)
    assert code == 0, rows
    assert rows["host current-host"]["result"] == "ok"

    # A host whose agent only speaks an API this release no longer serves is a no-go.
    add_host(state_dir, OLD_HOST, ["v0"])
    code, rows = findings(state_dir)
    assert code == 1, rows
    bad = rows[f"host {OLD_HOST}"]
    assert bad["result"] == "NO-GO"
    assert "['v0']" in bad["detail"]
    assert "kumo host sync" in bad["detail"]
    assert rows["host current-host"]["result"] == "ok"
    assert rows["schema"]["result"] == "ok"

    table = k(state_dir, "upgrade", "check")
    assert table.returncode == 1, table.stdout + table.stderr
    assert "NO-GO" in table.stdout
    assert OLD_HOST in table.stdout

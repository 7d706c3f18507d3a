"""An agent process never touches the database (DESIGN.md section 7): `kumo serve agent`
loads neither the database layer nor the API, nor their libraries. What it loads costs
it: psycopg, pulled in through the command's module for a moment, doubled the agents' CPU
per deleted server in bench/servers.py."""

from __future__ import annotations

import subprocess
import sys

AGENT_ENTRY = (
    "kumo.cli.main",
    "kumo.agent.service",
    "kumo.agent.drivers",
    "kumo.agent.network_setup",
    "kumo.agent.inventory",
)
NOT_IN_AN_AGENT = ("sqlalchemy", "alembic", "psycopg", "pymysql", "fastapi", "kumo.db", "kumo.api")


def test_the_agent_command_loads_no_database_or_api_code() -> None:
    probe = (
        f"import sys\nfor name in {AGENT_ENTRY!r}:\n    __import__(name)\n"
        f"print(' '.join(m for m in {NOT_IN_AN_AGENT!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert loaded == []

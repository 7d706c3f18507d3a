"""What a `kumo` command loads is what it costs: every command is a new Python process, and
before the lazy imports `kumo --help` imported pydantic's configuration models, yaml and
rich's tables (1.5 s of CPU on the 2-core machine without cached bytecode), and
`kumo host list` the API's identity code with argon2 and cryptography (bench/README.md,
"CLI start"). These checks read sys.modules after the real command ran in its own
interpreter, so a module-level import added to kumo.cli.main, kumo.cli.usage,
kumo.cli.output or kumo.runtime makes them fail; no timing, so a busy machine cannot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kumoproc import clean_env
from kumoproc import kumo as run_kumo

# Runs the command as the `kumo` entry point does, then prints the top-level packages and
# kumo modules it imported.
PROBE = """
import sys
sys.argv = ["kumo", *sys.argv[1:]]
from kumo.cli.main import main
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print("LOADED", " ".join(sorted(sys.modules)), file=sys.stderr)
"""

SERVER_SIDE = ("fastapi", "starlette", "uvicorn", "kombu", "alembic", "argon2", "cryptography")
DATABASE = ("sqlalchemy", "psycopg", "pymysql", "kumo.db", "kumo.core")
HEAVY = (*SERVER_SIDE, *DATABASE, "yaml", "kumo.api", "kumo.config")


def loaded(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=clean_env(),
    )
    line = next(x for x in done.stderr.splitlines() if x.startswith("LOADED "))
    return set(line.split()[1:])


def among(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` (packages: a submodule counts) are in ``modules``."""
    return sorted(n for n in names if any(m == n or m.startswith(n + ".") for m in modules))


@pytest.mark.parametrize(
    "args", [("--help",), ("usage", "--help"), ("usage", "report", "--help"), ("host", "--help")]
)
def test_help_loads_no_server_database_or_configuration_code(args: tuple[str, ...]) -> None:
    assert among(loaded(*args), HEAVY) == []


def test_top_level_help_loads_not_even_pydantic() -> None:
    """Below the top level, typer builds pydantic adapters for the options it parses (the
    root's --state-dir on the way to a subcommand), so only here is pydantic avoidable."""
    assert among(loaded("--help"), (*HEAVY, "pydantic")) == []


def test_version_loads_not_even_rich() -> None:
    assert among(loaded("--version"), (*HEAVY, "pydantic", "rich")) == []


def test_a_database_command_loads_no_api_or_messaging_code(state_dir: Path) -> None:
    """`kumo host list` needs the configuration and the database layer, nothing of the
    API, the message bus or the password hashing."""
    result = run_kumo("--state-dir", str(state_dir), "db", "upgrade", "--no-backup")
    assert result.returncode == 0, result.stderr
    modules = loaded("--state-dir", str(state_dir), "host", "list", "--format", "json")
    assert "sqlalchemy" in modules  # it did run its query
    assert among(modules, (*SERVER_SIDE, "kumo.api", "kumo.controller", "rich")) == []


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_usage_report_maps_no_orm_models(state_dir: Path, fmt: str) -> None:
    """`kumo usage report` reads the ledger table only: importing kumo.db.models maps every
    class of the cloud (about 0.4 s of CPU, most of the command's time: bench/README.md,
    "usage_report.py"), and the report needs none of them. rich only draws the table."""
    result = run_kumo("--state-dir", str(state_dir), "db", "upgrade", "--no-backup")
    assert result.returncode == 0, result.stderr
    period = ("--start", "2026-11-01", "--end", "2026-12-01")
    modules = loaded("--state-dir", str(state_dir), "usage", "report", *period, "-f", fmt)
    assert "kumo.db.usage_tables" in modules  # it did run its query
    unwanted = (*SERVER_SIDE, "kumo.db.models", "kumo.api", "kumo.controller")
    assert among(modules, (*unwanted, *(["rich"] if fmt != "table" else []))) == []

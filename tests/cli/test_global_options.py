"""The options every `kumo` command accepts (--state-dir, --config, -v) work before and after
the subcommand, and operator commands print only what the operator needs."""

from __future__ import annotations

from pathlib import Path

from kumoproc import Result, kumo


def ok(result: Result) -> Result:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_state_dir_and_config_after_the_subcommand(tmp_path: Path) -> None:
    state = tmp_path / "after"
    upgraded = ok(kumo("db", "upgrade", "--state-dir", str(state)))
    assert "database upgraded from empty" in upgraded.stdout
    assert (state / "kumo.db").exists()  # the state directory given after `db upgrade`

    # The same database, whichever side of the subcommand names it (and for a nested one).
    for argv in (
        ["db", "version", "--format", "json", "--state-dir", str(state)],
        ["--state-dir", str(state), "db", "version", "--format", "json"],
        ["db", "--state-dir", str(state), "version", "--format", "json"],
    ):
        (row,) = ok(kumo(*argv)).json()  # type: ignore[misc]
        assert row["current"] == row["head"], argv

    # The one nearer the end of the line wins.
    other = tmp_path / "other"
    ok(kumo("--state-dir", str(state), "db", "upgrade", "--state-dir", str(other)))
    assert (other / "kumo.db").exists()

    # --config after the subcommand is read: a database URL that cannot work says so.
    config = tmp_path / "kumo.toml"
    config.write_text('[database]\nurl = "nosuchdriver://x/y"\n')
    failed = kumo("db", "version", "--state-dir", str(state), "--config", str(config))
    assert failed.returncode != 0
    assert "nosuchdriver" in failed.stdout + failed.stderr


def test_operator_commands_print_no_library_logs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ok(kumo("--state-dir", str(state), "db", "upgrade"))
    for argv in (["db", "version"], ["db", "check"], ["upgrade", "check"]):
        result = ok(kumo("--state-dir", str(state), *argv))
        assert result.stderr == "", f"{argv} printed to stderr:\n{result.stderr}"
        assert "alembic" not in result.stdout
    # -v (before or after the subcommand) shows the debug logs again.
    for argv in (["-v", "db", "version"], ["db", "version", "-v"]):
        verbose = ok(kumo("--state-dir", str(state), *argv))
        assert "alembic" in verbose.stderr, argv

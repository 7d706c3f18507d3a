"""Backups before every schema change: SQLite online backup, pg_dump, mysqldump."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import IO

from kumo.db.engine import Database, normalize_url
from kumo.db.types import utcnow


class BackupError(Exception):
    """A backup or restore could not be made; the message says what to install or fix."""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} is not installed; install {package} (apt-get install "
            f"{package}) so kumo can back up the database before changing it."
        )
    return path


def _pg_args(db: Database) -> tuple[list[str], dict[str, str]]:
    url = normalize_url(db.url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    args = ["-h", url.host or "localhost", "-p", str(url.port or 5432)]
    if url.username:
        args += ["-U", url.username]
    return args, env


def _mysql_args(db: Database) -> list[str]:
    url = normalize_url(db.url)
    args = ["-h", url.host or "localhost", "-P", str(url.port or 3306)]
    if url.username:
        args.append(f"-u{url.username}")
    if url.password:
        args.append(f"-p{url.password}")
    return args


def backup(db: Database, directory: Path, label: str = "backup") -> Path:
    """Write a complete, consistent copy of the database into ``directory``; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = utcnow().strftime("%Y%m%dT%H%M%S%fZ")
    backend = db.backend
    url = normalize_url(db.url)
    if backend == "sqlite":
        target = directory / f"kumo-{label}-{stamp}.sqlite"
        source = sqlite3.connect(str(url.database))
        try:
            dest = sqlite3.connect(str(target))
            with dest:
                source.backup(dest)
            dest.close()
        finally:
            source.close()
    elif backend == "postgresql":
        target = directory / f"kumo-{label}-{stamp}.pgdump"
        args, env = _pg_args(db)
        _run(
            [
                _tool("pg_dump", "postgresql-client"),
                *args,
                "-Fc",
                "-f",
                str(target),
                str(url.database),
            ],
            env,
        )
    elif backend in ("mysql", "mariadb"):
        target = directory / f"kumo-{label}-{stamp}.sql"
        with target.open("wb") as out:
            _run(
                [
                    _tool("mysqldump", "mariadb-client"),
                    *_mysql_args(db),
                    "--single-transaction",
                    "--routines",
                    str(url.database),
                ],
                None,
                out,
            )
    else:
        raise BackupError(f"no backup method for database backend {backend}")
    target.chmod(0o600)
    return target


def restore(db: Database, source: Path) -> None:
    """Replace the database's content with a backup made by :func:`backup`."""
    if not source.is_file():
        raise BackupError(f"backup file {source} does not exist")
    backend = db.backend
    url = normalize_url(db.url)
    db.dispose()
    if backend == "sqlite":
        src = sqlite3.connect(str(source))
        try:
            dest = sqlite3.connect(str(url.database))
            with dest:
                src.backup(dest)
            dest.close()
        finally:
            src.close()
    elif backend == "postgresql":
        args, env = _pg_args(db)
        _run(
            [
                _tool("pg_restore", "postgresql-client"),
                *args,
                "--clean",
                "--if-exists",
                "--no-owner",
                "-d",
                str(url.database),
                str(source),
            ],
            env,
        )
    elif backend in ("mysql", "mariadb"):
        with source.open("rb") as data:
            _run(
                [_tool("mysql", "mariadb-client"), *_mysql_args(db), str(url.database)],
                None,
                stdin=data,
            )
    else:
        raise BackupError(f"no restore method for database backend {backend}")


def _run(
    cmd: list[str],
    env: dict[str, str] | None,
    stdout: IO[bytes] | None = None,
    stdin: IO[bytes] | None = None,
) -> None:
    result = subprocess.run(
        cmd,
        env=env,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stdin=stdin,
        stderr=subprocess.PIPE,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(
            f"{Path(cmd[0]).name} failed ({result.returncode}): "
            f"{result.stderr.decode(errors='replace').strip()}"
        )

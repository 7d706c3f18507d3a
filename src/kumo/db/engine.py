"""Engines and sessions for the three supported backends.

URLs may be written the short way (``postgresql://``, ``mysql://``, ``mariadb://``); the
driver kumo ships with (psycopg 3, PyMySQL) is filled in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.orm import Session, sessionmaker

from kumo.db.revision import track_identity_writes

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}


def normalize_url(url: str) -> URL:
    """Parse a database URL and pick kumo's driver when none is named."""
    parsed = make_url(url)
    if parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    if parsed.drivername.startswith("mysql") and "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout makes writers queue
    # instead of failing at once.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        # The API serves up to 40 requests at once from its thread pool: keep that many
        # connections instead of reopening them (and re-running the PRAGMAs) under load.
        # An in-memory database has a single-connection pool that takes no sizes.
        pool = (
            {"pool_size": 20, "max_overflow": 30}
            if parsed.database not in (None, "", ":memory:")
            else {}
        )
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 30},
            **pool,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # READ COMMITTED everywhere: MariaDB's default REPEATABLE READ would let a transaction
    # that waited for a claims lock (kumo.db.locking) go on reading its older snapshot, and
    # two claims could both see room that only one of them may take.
    return create_engine(
        parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, isolation_level="READ COMMITTED"
    )


class Database:
    """An engine plus a session factory; one per process and database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        track_identity_writes(self._sessions)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back if it raises."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

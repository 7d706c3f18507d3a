"""Engines and sessions for the three supported backends.

URLs may be written the short way (``postgresql://``, ``mysql://``, ``mariadb://``); the
driver kumo ships with (psycopg 3, PyMySQL) is filled in.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

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


_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)
GATE_TIMEOUT = 30.0  # as long as SQLite's own busy_timeout


class WriteGate:
    """One SQLite writer at a time within this process, handed over at once.

    SQLite itself admits one writer; the others retry from its busy handler, which sleeps
    1, 2, 5 ... 100 ms between attempts, so under load a waiting writer starts up to 100 ms
    after the lock was free and throughput collapses. Here a transaction takes this lock
    before its first write statement and gives it back when its connection returns to the
    pool (after COMMIT or ROLLBACK) or is closed, so the next writer of this process goes
    the moment the lock is free. Writers in other processes still meet SQLite's busy
    handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: dict[Any, Any] | None = None  # the holding connection's info dict
        self._owner: int | None = None  # and its thread

    def before_execute(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        info = conn.info  # per pooled DBAPI connection
        if self._holder is info or not _WRITE.match(statement):
            return
        if self._owner == threading.get_ident():
            # This thread already writes on another connection: waiting for the gate would
            # wait for itself. Leave it to SQLite, as without the gate.
            return
        if not self._lock.acquire(timeout=GATE_TIMEOUT):
            raise OperationalError(statement, None, Exception("database is locked"))
        self._holder, self._owner = info, threading.get_ident()

    def release(self, _dbapi_connection: Any, record: Any) -> None:
        if record is not None and self._holder is not None and record.info is self._holder:
            self._holder = self._owner = None
            self._lock.release()


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
        if pool:  # several connections: several writers of this process may queue
            gate = WriteGate()
            event.listen(engine, "before_cursor_execute", gate.before_execute)
            event.listen(engine, "checkin", gate.release)
            event.listen(engine, "close", gate.release)
        return engine
    # READ COMMITTED everywhere: MariaDB's default REPEATABLE READ would let a transaction
    # that waited for a claims lock (kumo.db.locking) go on reading its older snapshot, and
    # two claims could both see room that only one of them may take.
    return create_engine(
        parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, isolation_level="READ COMMITTED"
    )


def _bump_identity_revision(session: Session, _context: Any, _instances: Any) -> None:
    """kumo.db.revision imported at the first flush, not with the engine: it needs the ORM
    models, and a command that only reads (`kumo usage report`) maps none of them
    (bench/README.md, "usage_report.py"). A session with nothing to write does not flush."""
    from kumo.db import revision

    revision.bump(session)


class Database:
    """An engine plus a session factory; one per process and database URL."""

    def __init__(self, url: str, session_info: dict[str, Any] | None = None) -> None:
        """``session_info`` goes into every session's ``info``: what the process's
        configuration tells the recorders (kumo.core.recording), e.g. that notifications
        are on (kumo.core.notifications.session_info)."""
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False, info=session_info)
        # The identity revision (kumo.db.revision) moves with every identity write.
        event.listen(self._sessions, "before_flush", _bump_identity_revision)

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

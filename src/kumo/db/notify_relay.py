"""Wake-ups across processes on PostgreSQL: LISTEN/NOTIFY (``kumo.db.wakeup_relay``).

Each process sends on its own connection, one ``pg_notify`` per batch, and listens on
another, blocked in ``notifies()``; whom to tell is PostgreSQL's job, so the only question
is whether anyone but this process listens at all.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence

import psycopg
from sqlalchemy.engine import make_url

from kumo.db.wakeup_relay import PEER_CHECK, TICK, WakeupRelay, payloads

CHANNEL = "kumo_wakeup"
LISTEN = f"LISTEN {CHANNEL}"
# Other kumo processes listening on this database: their listening connection's last (and
# only) statement is LISTEN. Same role, so their rows are visible without extra grants.
PEERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND query = %s"
)
Connection = psycopg.Connection[tuple[object, ...]]


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) as libpq takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class NotifyRelay(WakeupRelay):
    """The relay on PostgreSQL's notification channel ``kumo_wakeup``."""

    errors = (psycopg.Error,)

    def __init__(
        self,
        url: str,
        deliver: Callable[[Sequence[str]], None],
        peer_check: float = PEER_CHECK,
    ) -> None:
        super().__init__(deliver, peer_check)
        self.url = libpq_url(url)
        self._peers = 0
        self._peers_seen_at = -peer_check
        self._sender: Connection | None = None
        self._listener: Connection | None = None

    def _connect(self) -> Connection:
        return psycopg.connect(self.url, autocommit=True, connect_timeout=5)

    def _send(self, topics: list[str]) -> None:
        if self._sender is None or self._sender.closed:
            self._sender = self._connect()
        if not self._others_listen(self._sender):
            return  # kumo up alone: nobody to tell (it looks again in a while)
        for payload in payloads(self.origin, topics):
            self._sender.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))

    def _others_listen(self, conn: Connection) -> bool:
        """Whether another process listens (besides this one's own listener); looked up
        at most every ``peer_check`` seconds. A process that starts listening meanwhile
        misses wake-ups that long, and polls."""
        now = time.monotonic()
        if now - self._peers_seen_at >= self.peer_check:
            row = conn.execute(PEERS, (LISTEN,)).fetchone()
            self._peers = int(row[0]) if row else 0  # type: ignore[call-overload]
            self._peers_seen_at = now
        return self._peers > (1 if self._listening.is_set() else 0)

    def _close_sender(self) -> None:
        _close(self._sender)
        self._sender = None

    def _listen(self) -> None:
        self._listener = conn = self._connect()
        conn.execute(LISTEN)
        self._listening.set()
        while not self._stop.is_set():
            for note in conn.notifies(timeout=TICK):
                self._receive(note.payload)

    def _close_listener(self) -> None:
        _close(self._listener)
        self._listener = None


def _close(conn: Connection | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()

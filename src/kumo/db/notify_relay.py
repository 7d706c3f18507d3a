"""Wake-ups across processes on PostgreSQL: LISTEN/NOTIFY (DESIGN.md sections 2 and 3.2).

A wake-up (``kumo.core.wakeup``) lives in one process. With several API copies and a
separate controller, the process that writes a request is often not the one whose loop or
long-poll should act on it: a server placed by the controller waits for its agent's next
periodic resync (up to 20 s) unless the API copy holding that agent's long-poll hears of
it. On PostgreSQL every such process relays its wake-ups through one notification channel
and delivers the others' to its own waiters.

Only an accelerator, like the wake-ups themselves: a lost notification, or a database
connection that drops, costs latency until the next poll, never correctness. So errors
here are logged and retried, never raised into a request. Each process sends on its own
connection from one thread, batching whatever wake-ups queued up meanwhile into one
``pg_notify``, and listens on another; its own notifications come back to it and are
dropped by their origin id.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

CHANNEL = "kumo_wakeup"
MAX_PAYLOAD = 7900  # PostgreSQL refuses a payload of 8000 bytes or more
RETRY = 2.0  # seconds before a dropped connection is opened again
TICK = 1.0  # seconds each thread blocks at most, so that stop() is heard
PEER_CHECK = 5.0  # seconds between looks for other processes listening
LISTEN = f"LISTEN {CHANNEL}"
# Other kumo processes listening on this database: their listening connection's last (and
# only) statement is LISTEN. Same role, so their rows are visible without extra grants.
PEERS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND query = %s"
)


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL (``postgresql+psycopg://...``) as libpq takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def payloads(origin: str, topics: Iterable[str]) -> list[str]:
    """``origin topic topic ...``, each topic once, split so none exceeds MAX_PAYLOAD."""
    found, current = [], origin
    for topic in dict.fromkeys(topics):
        if len(current) + 1 + len(topic) > MAX_PAYLOAD and current != origin:
            found.append(current)
            current = origin
        current += " " + topic
    if current != origin:
        found.append(current)
    return found


class NotifyRelay:
    """Publish this process's wake-ups; deliver other processes' through ``deliver``."""

    def __init__(
        self,
        url: str,
        deliver: Callable[[Sequence[str]], None],
        peer_check: float = PEER_CHECK,
    ) -> None:
        self.url = libpq_url(url)
        self.deliver = deliver
        self.origin = uuid.uuid4().hex[:12]
        self.peer_check = peer_check
        self._peers = 0
        self._peers_seen_at = -peer_check
        # Topics waiting to be sent, each once: bounded by the distinct topics (hosts,
        # servers' consoles), however long the database is away.
        self._pending: dict[str, None] = {}
        self._pending_lock = threading.Lock()
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, name="wakeup-send", daemon=True),
            threading.Thread(target=self._listen_loop, name="wakeup-listen", daemon=True),
        ]

    def start(self) -> NotifyRelay:
        for thread in self._threads:
            thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        """True once the listening connection is up (tests: nothing sent before is heard)."""
        return self._listening.wait(timeout)

    def publish(self, topics: Sequence[str]) -> None:
        """Queue wake-ups for the other processes; never blocks a request."""
        if topics and not self._stop.is_set():
            with self._pending_lock:
                self._pending.update(dict.fromkeys(topics))
            self._wanted.set()

    def stop(self, timeout: float = TICK + 1.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    # -- sending -------------------------------------------------------------------------
    def _send_loop(self) -> None:
        conn: psycopg.Connection[tuple[object, ...]] | None = None
        while not self._stop.is_set():
            if not self._wanted.wait(TICK):
                continue
            with self._pending_lock:  # everything queued meanwhile goes out together
                topics, self._pending = list(self._pending), {}
                self._wanted.clear()
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                if not self._others_listen(conn):
                    continue  # kumo up alone: nobody to tell (it looks again in a while)
                for payload in payloads(self.origin, topics):
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
            except psycopg.Error as exc:
                log.warning("wake-ups not relayed to other processes (%s); retrying", exc)
                _close(conn)
                conn = None
                self.publish(topics)  # sent again, with what comes meanwhile, once back
                self._stop.wait(RETRY)
        _close(conn)

    def _others_listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> bool:
        """Whether another process listens (besides this one's own listener); looked up
        at most every ``peer_check`` seconds. A process that starts listening meanwhile
        misses wake-ups that long, and polls."""
        now = time.monotonic()
        if now - self._peers_seen_at >= self.peer_check:
            row = conn.execute(PEERS, (LISTEN,)).fetchone()
            self._peers = int(row[0]) if row else 0  # type: ignore[call-overload]
            self._peers_seen_at = now
        return self._peers > (1 if self._listening.is_set() else 0)

    # -- listening -----------------------------------------------------------------------
    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                conn.execute(LISTEN)
                self._listening.set()
                while not self._stop.is_set():
                    for note in conn.notifies(timeout=TICK):
                        self._receive(note.payload)
            except psycopg.Error as exc:
                self._listening.clear()
                if not self._stop.is_set():
                    log.warning("not hearing other processes' wake-ups (%s); retrying", exc)
                    self._stop.wait(RETRY)
            finally:
                _close(conn)

    def _receive(self, payload: str) -> None:
        origin, _, rest = payload.partition(" ")
        if origin == self.origin or not rest:
            return
        try:
            self.deliver(rest.split(" "))
        except Exception:  # a waiter's bug must not end the relay
            log.exception("delivering relayed wake-ups failed")


def _close(conn: psycopg.Connection[tuple[object, ...]] | None) -> None:
    if conn is not None:
        with contextlib.suppress(psycopg.Error):
            conn.close()

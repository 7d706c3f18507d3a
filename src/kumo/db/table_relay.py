"""Wake-ups across processes on MariaDB: a polled table (``kumo.db.wakeup_relay``).

MariaDB has no LISTEN/NOTIFY. Each process instead:
- heartbeats its row in ``wakeup_listeners`` every ``peer_check`` second, counts the
  others whose heartbeat is fresh and reads the notes written since its last look (by a
  process that came and went in between): the only statements it pays while alone (four
  cheap ones a second);
- while others listen, inserts each batch of its wake-ups into ``wakeup_notes`` and reads
  the notes after the last one it saw every ``poll`` seconds (a primary-key range read);
- every ``PRUNE_EVERY`` heartbeats, prunes notes older than a minute and listeners gone
  for ``LISTENER_GONE``; a stopping process deletes its own row at once.

A note whose autoincrement id is taken before, but committed after, one already read is
missed (MariaDB hands out ids in insert order, not commit order): with one short
autocommit insert per batch that window is a moment wide, and a miss costs only the
loop's own poll.

Heartbeats carry each host's own clock: a host more than 15 s off looks absent to the
others, who then write nothing for it, and its loops fall back to polling.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from kumo.db.models import WakeupListener, WakeupNote
from kumo.db.types import utcnow
from kumo.db.wakeup_relay import PEER_CHECK, TICK, WakeupRelay, payloads

POLL = 0.2  # seconds between reads of new notes while others listen
NOTE_KEPT = dt.timedelta(seconds=60)  # long enough for a poller paused by a slow moment
# A heartbeat older than this is a process gone (crashed: one that stops says so). Wide, so
# that a process paused by a busy moment is not dropped by the others.
LISTENER_FRESH = dt.timedelta(seconds=15)
LISTENER_GONE = dt.timedelta(minutes=10)  # then its row is pruned
PRUNE_EVERY = 10  # heartbeats


class TableRelay(WakeupRelay):
    """The relay through the ``wakeup_notes`` and ``wakeup_listeners`` tables."""

    errors = (SQLAlchemyError,)

    def __init__(
        self,
        engine: Engine,
        deliver: Callable[[Sequence[str]], None],
        peer_check: float = PEER_CHECK,
        poll: float = POLL,
    ) -> None:
        super().__init__(deliver, peer_check)
        self.engine = engine
        self.poll = poll
        self._peers = 0
        self._last_read: int | None = None  # the id of the last note read, once polling
        self._beats = 0

    @property
    def peers(self) -> int:
        """Other processes listening, as of this one's last heartbeat."""
        return self._peers

    def _send(self, topics: list[str]) -> None:
        if not self._peers:
            return  # nobody else listens (the listener's heartbeat looks again)
        now = utcnow()
        rows = [{"payload": p, "created_at": now} for p in payloads(self.origin, topics)]
        with self.engine.begin() as conn:
            conn.execute(insert(WakeupNote), rows)

    def _close_sender(self) -> None:
        """Nothing to close: the engine's pool holds the connections."""

    def _listen(self) -> None:
        newest = self._heartbeat()
        # After an error, go on from the last note read: what others wrote meanwhile is
        # still there (for a minute).
        last = newest if self._last_read is None else self._last_read
        self._listening.set()
        next_beat = time.monotonic() + self.peer_check
        while not self._stop.is_set():
            if time.monotonic() >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + self.peer_check
                if not self._peers:
                    # Alone now, but a short-lived process (a command such as `kumo host
                    # evacuate`) may have written its notes and left since the last look.
                    last = self._last_read = self._read_after(last)
            if self._peers:
                last = self._last_read = self._read_after(last)
                self._stop.wait(self.poll)
            else:
                self._stop.wait(min(TICK, max(0.0, next_beat - time.monotonic())))
        self._leave()

    def _heartbeat(self) -> int:
        """Mark this process listening, count the others, prune; the newest note's id.

        Short transactions, one job each: two processes' heartbeats that each held their
        own listener row while scanning the table to prune deadlocked on MariaDB."""
        now = utcnow()
        self._beats += 1
        mine = WakeupListener.origin == self.origin
        with self.engine.begin() as conn:
            if not conn.execute(update(WakeupListener).where(mine).values(seen_at=now)).rowcount:
                conn.execute(insert(WakeupListener).values(origin=self.origin, seen_at=now))
        if self._beats % PRUNE_EVERY == 1:
            with self.engine.begin() as conn:
                conn.execute(delete(WakeupNote).where(WakeupNote.created_at < now - NOTE_KEPT))
            with self.engine.begin() as conn:
                conn.execute(
                    delete(WakeupListener).where(WakeupListener.seen_at < now - LISTENER_GONE)
                )
        with self.engine.connect() as conn:
            self._peers = conn.execute(
                select(func.count())
                .select_from(WakeupListener)
                .where(
                    WakeupListener.origin != self.origin,
                    WakeupListener.seen_at > now - LISTENER_FRESH,
                )
            ).scalar_one()
            newest = conn.execute(select(func.max(WakeupNote.id))).scalar_one()
        return int(newest or 0)

    def _read_after(self, last: int) -> int:
        with self.engine.connect() as conn:
            notes = conn.execute(
                select(WakeupNote.id, WakeupNote.payload)
                .where(WakeupNote.id > last)
                .order_by(WakeupNote.id)
            ).all()
        for note_id, payload in notes:
            self._receive(payload)
            last = note_id
        return last

    def _leave(self) -> None:
        """Stopping: others stop writing for this process at once, not after its
        heartbeat goes stale."""
        with self.engine.begin() as conn:
            conn.execute(delete(WakeupListener).where(WakeupListener.origin == self.origin))

    def _close_listener(self) -> None:
        """Nothing to close: the engine's pool holds the connections."""

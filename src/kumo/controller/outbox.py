"""The outbox publisher: sends committed notifications to RabbitMQ, then forgets them.

DESIGN.md rule 3.10. Rows (kumo.db.outbox_tables) are read oldest first and published one
by one with publisher confirms (kombu on py-amqp, ``confirm_publish``): a row is deleted
only once the broker confirmed it, so a broker that is down, restarted or unreachable
delays messages and never loses them. Order: rows leave in ``id`` order, so each
resource's messages arrive in the order their changes committed; after a failure the
oldest unconfirmed row is sent first again.

Delivery is at least once. In the normal path each row is sent once: rows confirmed are
deleted even when the connection fails right after (the ids are kept in memory until the
delete commits). Only a message whose confirm was lost in flight with the connection is
sent again, with the same ``message_id`` (fixed in the row), so a consumer can drop it.

Where it runs: in the controller process, only while this controller holds the lease
(one publisher per cloud); it wakes when a transaction commits rows (wakeup.OUTBOX, also
across processes by the wake-up relay) and polls as well, since a wake-up may be lost.
Exchanges are declared as oslo.messaging declares them (topic, not durable, not
auto-deleted), and so is the queue named for each routing key ("notifications.info"...),
as oslo.messaging's notifier does, so messages published before any consumer bound are
kept for the first one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import kombu
from sqlalchemy import delete, select

from kumo.controller import metrics
from kumo.core import wakeup
from kumo.db.engine import Database
from kumo.db.outbox_tables import OutboxMessage
from kumo.db.types import utcnow

log = logging.getLogger(__name__)

BATCH = 200  # rows read per transaction
CONFIRM_TIMEOUT = 10.0  # seconds the broker has to confirm one message
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # reconnect delays, doubling up to the max
# After a wake-up, wait this long for more commits before draining: under a stream of
# requests each drain (a read and a delete transaction, which on SQLite take the one
# writer's turn from the API) carries many rows instead of one request's few.
LINGER = 0.05


@dataclass
class _Channel:
    """A connection with its channel and what was declared on it (declared once each)."""

    connection: kombu.Connection
    producer: kombu.Producer
    declared: set[tuple[str, str]] = field(default_factory=set)

    def close(self) -> None:
        try:
            self.connection.release()
        except Exception:  # closing a broken connection may fail; it is dropped anyway
            log.debug("closing the broker connection failed", exc_info=True)


class Publisher:
    """Drains the outbox to the broker at ``url`` while ``active()`` says so."""

    def __init__(
        self,
        db: Database,
        url: str,
        active: Callable[[], bool] = lambda: True,
        poll: float = 1.0,
        linger: float = LINGER,
    ) -> None:
        self.db = db
        self.url = url
        self.active = active
        self.poll = poll
        self.linger = linger
        self._channel: _Channel | None = None
        self._backoff = BACKOFF_FIRST

    def run(self, stop: threading.Event) -> None:
        mark = wakeup.mark(wakeup.OUTBOX)
        while not stop.is_set():
            try:
                if self.active():
                    self.drain(stop)
            except Exception as exc:  # the broker or the database: wait, then again
                self._disconnect()
                log.warning("outbox: %s; retrying in %.1f s", _why(exc), self._backoff)
                metrics.OUTBOX_FAILURES.inc()
                stop.wait(self._backoff)
                self._backoff = min(self._backoff * 2, BACKOFF_MAX)
                continue
            woken = wakeup.wait(wakeup.OUTBOX, mark, self.poll)
            if woken != mark:  # let a burst of commits gather: one read, one delete for all
                stop.wait(self.linger)
            mark = woken
        self._disconnect()

    def drain(self, stop: threading.Event | None = None) -> int:
        """Publish every row now in the outbox, oldest first; the number sent. Raises when
        the broker fails (the rows not confirmed stay for the next try)."""
        sent = 0
        while stop is None or not stop.is_set():
            with self.db.session() as session:
                rows = list(
                    session.scalars(select(OutboxMessage).order_by(OutboxMessage.id).limit(BATCH))
                )
            if not rows:
                return sent
            channel = self._connect()
            confirmed: list[int] = []
            try:
                for row in rows:
                    self._publish(channel, row)
                    confirmed.append(row.id)
                    metrics.OUTBOX_PUBLISH_SECONDS.observe(
                        max(0.0, (utcnow() - row.created_at).total_seconds())
                    )
            finally:
                self._forget(confirmed)
            sent += len(confirmed)
            self._backoff = BACKOFF_FIRST
        return sent

    def _forget(self, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            with self.db.session() as session:
                session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
            metrics.OUTBOX_PUBLISHED.inc(len(ids))

    def _connect(self) -> _Channel:
        if self._channel is None:
            connection = kombu.Connection(
                self.url,
                connect_timeout=5,
                transport_options={"confirm_publish": True},
            )
            connection.connect()
            self._channel = _Channel(connection, kombu.Producer(connection.channel()))
            log.info("outbox: connected to %s", connection.as_uri())
        return self._channel

    def _disconnect(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _publish(self, channel: _Channel, row: OutboxMessage) -> None:
        exchange = kombu.Exchange(row.exchange, type="topic", durable=False, auto_delete=False)
        if (row.exchange, row.routing_key) not in channel.declared:
            bound = exchange(channel.producer.channel)
            bound.declare()
            kombu.Queue(
                row.routing_key,
                exchange=exchange,
                routing_key=row.routing_key,
                durable=False,
                auto_delete=False,
            )(channel.producer.channel).declare()
            channel.declared.add((row.exchange, row.routing_key))
        channel.producer.publish(
            row.envelope,
            exchange=exchange,
            routing_key=row.routing_key,
            content_type="application/json",
            content_encoding="utf-8",
            message_id=row.message_id,
            confirm_timeout=CONFIRM_TIMEOUT,
        )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

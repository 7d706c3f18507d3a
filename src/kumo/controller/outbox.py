"""The outbox publisher: sends committed notifications to RabbitMQ, then forgets them.

DESIGN.md rule 3.10. Rows (kumo.db.outbox_tables) are read oldest first, a batch at a
time, and published with publisher confirms (kombu on py-amqp, the channel in confirm
mode; a batch is sent back to back and its confirms awaited together): a row is deleted
only once the broker confirmed it and every row before it, so a broker that is down,
restarted or unreachable delays messages and never loses them. Order: rows leave in
``id`` order, so each resource's messages arrive in the order their changes committed;
after a failure the oldest unconfirmed row is sent first again.

Delivery is at least once. In the normal path each row is sent once: rows confirmed are
deleted even when the connection fails right after (the ids are kept in memory until the
delete commits). Only messages whose confirms were lost in flight with the connection (at
most one batch) are sent again, with the same ``message_id`` (fixed in the row), so a
consumer can drop the copy.

Where it runs: in the controller process, only while this controller holds the lease
(one publisher per cloud); it wakes when a transaction commits rows (wakeup.OUTBOX, also
across processes by the wake-up relay) and polls as well, since a wake-up may be lost.
Exchanges are declared as oslo.messaging declares them (topic, not durable, not
auto-deleted), and so is the queue named for each routing key ("notifications.info"...),
as oslo.messaging's notifier does, so messages published before any consumer bound are
kept for the first one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

import kombu
from sqlalchemy import delete, select

from kumo.controller import metrics
from kumo.core import wakeup
from kumo.db.engine import Database
from kumo.db.outbox_tables import OutboxMessage
from kumo.db.types import utcnow

log = logging.getLogger(__name__)

BATCH = 200  # rows read per transaction
CONFIRM_TIMEOUT = 10.0  # seconds the broker has to confirm a batch
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0  # reconnect delays, doubling up to the max
# After a wake-up, wait this long for more commits before draining: under a stream of
# requests each drain (a read and a delete transaction, which on SQLite take the one
# writer's turn from the API) carries many rows instead of one request's few.
LINGER = 0.05


class _Row(NamedTuple):
    """What the publisher needs of an outbox row (the envelope is the JSON text built once
    when the row was written: it is sent as it is, never decoded or encoded again)."""

    id: int
    exchange: str
    routing_key: str
    message_id: str
    envelope: str
    created_at: dt.datetime


@dataclass
class _Channel:
    """A connection with its channel in confirm mode, what was declared on it (once each)
    and the broker's confirms so far: ``published`` is the delivery tag of the last
    message sent (tags count from 1 per channel), ``acked`` the highest tag up to which
    the broker confirmed them all, ``nacked`` whether it refused any."""

    connection: kombu.Connection
    producer: kombu.Producer
    declared: set[tuple[str, str]] = field(default_factory=set)
    exchanges: dict[str, kombu.Exchange] = field(default_factory=dict)
    published: int = 0
    acked: set[int] = field(default_factory=set)
    nacked: bool = False

    def on_ack(self, tag: int, multiple: bool) -> None:
        self.acked.update(range(1, tag + 1) if multiple else (tag,))

    def on_nack(self, tag: int, multiple: bool) -> None:
        self.nacked = True

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
            rows = self._read()
            if not rows:
                return sent
            channel = self._connect()
            confirmed: list[_Row] = []
            try:
                self._publish_confirmed(channel, rows, confirmed)
            finally:
                self._forget(confirmed)
            sent += len(confirmed)
            self._backoff = BACKOFF_FIRST
            if len(rows) < BATCH:  # that was all there was: no second read to learn it
                return sent
        return sent

    def _read(self) -> list[_Row]:
        """The oldest rows, as plain tuples of the columns sent: a read takes no write
        turn (on SQLite, kumo.db.engine.WriteGate) and builds no ORM objects."""
        with self.db.session() as session:
            return [
                _Row(*row)
                for row in session.execute(
                    select(
                        OutboxMessage.id,
                        OutboxMessage.exchange,
                        OutboxMessage.routing_key,
                        OutboxMessage.message_id,
                        OutboxMessage.envelope,
                        OutboxMessage.created_at,
                    )
                    .order_by(OutboxMessage.id)
                    .limit(BATCH)
                )
            ]

    def _publish_confirmed(
        self, channel: _Channel, rows: list[_Row], confirmed: list[_Row]
    ) -> None:
        """Publish ``rows`` back to back, then wait for the broker's confirms (one round
        trip for the batch instead of one per message); ``confirmed`` gets, in order, the
        rows confirmed so far, also when this raises. A row is only counted when every row
        before it was confirmed too, so what is left for the next try keeps its order."""
        first = channel.published + 1
        for row in rows:
            self._publish(channel, row)
            channel.published += 1
        deadline = time.monotonic() + CONFIRM_TIMEOUT
        try:
            while not all(tag in channel.acked for tag in range(first, channel.published + 1)):
                if channel.nacked:
                    raise RuntimeError("the broker refused (nacked) a message")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the broker did not confirm in time")
                channel.connection.drain_events(timeout=left)
        finally:
            now = utcnow()
            for tag, row in enumerate(rows, start=first):
                if tag not in channel.acked:
                    break
                confirmed.append(row)
                metrics.OUTBOX_PUBLISH_SECONDS.observe(
                    max(0.0, (now - row.created_at).total_seconds())
                )

    def _forget(self, rows: Iterable[_Row]) -> None:
        """Delete the confirmed rows: one statement, one (short) write transaction."""
        ids = [row.id for row in rows]
        if ids:
            with self.db.session() as session:
                session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(ids)))
            metrics.OUTBOX_PUBLISHED.inc(len(ids))

    def _connect(self) -> _Channel:
        if self._channel is None:
            connection = kombu.Connection(self.url, connect_timeout=5)
            connection.connect()
            amqp_channel = connection.channel()
            channel = _Channel(connection, kombu.Producer(amqp_channel))
            amqp_channel.events["basic_ack"].add(channel.on_ack)
            amqp_channel.events["basic_nack"].add(channel.on_nack)
            amqp_channel.confirm_select()  # publisher confirms (RabbitMQ's extension)
            self._channel = channel
            log.info("outbox: connected to %s", connection.as_uri())
        return self._channel

    def _disconnect(self) -> None:
        if self._channel is not None:
            self._channel.close()
            self._channel = None

    def _publish(self, channel: _Channel, row: _Row) -> None:
        exchange = channel.exchanges.get(row.exchange)
        if exchange is None:
            exchange = kombu.Exchange(row.exchange, type="topic", durable=False, auto_delete=False)
            channel.exchanges[row.exchange] = exchange
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
        )


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

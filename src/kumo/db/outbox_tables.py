"""The notification outbox (DESIGN.md rule 3.10): one row per message to publish.

A row is written in the very transaction of the change it tells of (by the recorder in
kumo.core.notifications), so a message exists exactly when its change committed. The
controller's publisher (kumo.controller.outbox) sends rows in ``id`` order with publisher
confirms and deletes each only once the broker confirmed it: a broker outage delays
messages, it never loses them. ``id`` order is commit order per resource, since every
change to one resource takes that resource's row lock (or SQLite's single writer).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, Base
from kumo.db.types import UTCDateTime, utcnow

OUTBOX_ID = BigInteger().with_variant(Integer(), "sqlite")
# A versioned instance payload is a few KiB; MariaDB's TEXT stops at 64 KiB.
ENVELOPE = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


class OutboxMessage(Base):
    """One message as it goes on the wire: the exchange and routing key it is published
    to, and the oslo.messaging v2 envelope (``{"oslo.version": "2.0", "oslo.message":
    "..."}``) as JSON text, whose ``message_id`` is fixed here, so a message sent again
    after a lost confirm carries the same id and a consumer can drop the copy."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_created_at", "created_at"),)
    id: Mapped[int] = mapped_column(OUTBOX_ID, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    exchange: Mapped[str] = mapped_column(String(64))
    routing_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    # The resource the message is about (a server's id...): its messages leave in order.
    resource_id: Mapped[str] = mapped_column(ID)
    envelope: Mapped[str] = mapped_column(ENVELOPE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

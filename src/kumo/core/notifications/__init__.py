"""OpenStack notifications, written to the outbox in the transaction of the change.

What is published and where is in docs/notifications.md. This package only *writes*: the
recorder (:mod:`kumo.core.notifications.recorder`, one of kumo.core.recording's) turns the
changes a flush is about to write into outbox rows (kumo.db.outbox_tables), and the
controller's publisher (kumo.controller.outbox) sends them after commit.

Whether notifications are on is said explicitly, per database: the process that builds its
:class:`~kumo.db.engine.Database` from the configuration hands it :func:`session_info`,
which puts the :class:`Settings` into every session's ``info`` under :data:`SETTINGS`. A
session without them (notifications off, or a tool's own database) writes no outbox row.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from kumo.config import NotificationsConfig
from kumo.core import wakeup

SETTINGS = "kumo.notifications"  # the key of Settings in Session.info
WRITTEN = "kumo.notifications.written"  # set in Session.info once a row was added


@dataclass(frozen=True)
class Settings:
    """What the recorder needs of ``[notifications]``: which kinds to write, on which
    routing key prefixes, and the host named in ``publisher_id`` when none is known."""

    versioned: bool = True
    legacy: bool = True
    versioned_topic: str = "versioned_notifications"
    topic: str = "notifications"
    publisher_host: str = "localhost"


def settings_from(config: NotificationsConfig) -> Settings | None:
    """The settings for ``config``; None when no URL is set (notifications off)."""
    if not config.url:
        return None
    return Settings(
        versioned=config.versioned,
        legacy=config.legacy,
        versioned_topic=config.versioned_topic,
        topic=config.topic,
        publisher_host=config.publisher_host or socket.gethostname(),
    )


def session_info(config: NotificationsConfig) -> dict[str, Any]:
    """What a Database built from this configuration puts into each session's ``info``."""
    settings = settings_from(config)
    return {SETTINGS: settings} if settings is not None else {}


def settings_of(session: Session) -> Settings | None:
    value = session.info.get(SETTINGS)
    return value if isinstance(value, Settings) else None


@event.listens_for(Session, "after_commit")
def _wake_publisher(session: Session) -> None:
    """Rows were committed to the outbox: the publisher sends them now, not at its next
    poll (a lost wake-up costs latency only)."""
    if session.info.pop(WRITTEN, False):
        wakeup.notify(wakeup.OUTBOX)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(WRITTEN, None)

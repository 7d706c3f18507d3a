"""The notifications recorder: outbox rows for the instance actions a flush writes.

Registered in kumo.core.recording. It looks at what the session is about to flush (the
other services' resources: kumo.core.notifications.services). For compute, an
instance action inserted is its event's ``.start``; an action whose ``finish_time`` goes
from unset to set is its ``.end`` (or ``.error`` when its message says it failed). The
runner (kumo.core.operations) and server creation record one action per operation, and
the paths that end them set the finish time, so every path that starts or ends an
operation is covered without any of them calling this module.

A session whose ``info`` has no notification settings (kumo.core.notifications) writes
nothing: notifications are off, and the outbox stays empty.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, insert, inspect
from sqlalchemy.orm import Session

from kumo.core.notifications import WRITTEN, Settings, compute, envelope, services, settings_of
from kumo.db import models as m
from kumo.db.outbox_tables import OutboxMessage

Row = dict[str, Any]  # an outbox row's column values (envelope.row)
# Rows per INSERT: well under SQLite's bound parameters per statement (32766) and a
# MariaDB packet, for the rare flush that tells of many resources at once.
WRITE_CHUNK = 200


def record(session: Session) -> None:
    settings = settings_of(session)
    if settings is None:
        return
    rows: list[Row] = []
    # In the order they were added (and by id): a resource's messages leave in that order.
    new = [a for a in session.new if isinstance(a, m.InstanceAction)]
    for action in sorted(new, key=lambda a: inspect(a).insert_order or 0):
        rows += _action_event(session, settings, action, "start")
        if action.finish_time is not None:  # finished in the transaction that asked
            rows += _action_event(session, settings, action, _ending(action))
    dirty = [a for a in session.dirty if isinstance(a, m.InstanceAction) and _just_finished(a)]
    for action in sorted(dirty, key=lambda a: a.id):
        rows += _action_event(session, settings, action, _ending(action))
    if settings.legacy:
        rows += services.record(session, settings, settings.publisher_host)
    if rows:
        session.info.setdefault(PENDING, []).extend(rows)


# Rows recorded in before_flush, written by _write_pending once the flush's own statements
# ran. Every row comes from an object the flush writes (new, changed or deleted), so a
# flush that recorded rows always reaches after_flush; a commit writes what is left anyway.
PENDING = "kumo.notifications.pending"


@event.listens_for(Session, "after_flush")
def _write_pending(session: Session, _flush_context: Any) -> None:
    write(session, session.info.pop(PENDING, []))


@event.listens_for(Session, "before_commit")
def _write_left(session: Session) -> None:
    write(session, session.info.pop(PENDING, []))


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, _previous: Any) -> None:
    """A flush that failed (or a savepoint rolled back) leaves no message behind for a
    later flush to write: its rows were not written, or are rolled back with it."""
    session.info.pop(PENDING, None)


def write(session: Session, rows: list[Row]) -> None:
    """Insert outbox rows with one statement, in the transaction of ``session``.

    Not as ORM objects: the ORM inserts them one statement each on SQLite (it needs each
    row's generated id back), and every statement inside SQLite's write turn
    (kumo.db.engine.WriteGate) costs the turn a round for the GIL, under load several ms
    (bench/notifications.py measured 2 outbox INSERTs adding 9 ms to POST /servers' turn).
    Nothing reads the rows back in this transaction, so no ids are needed. The recorder's
    rows are written after the flush's own statements (_write_pending), not before them:
    the flush's first write takes the turn, and the ORM's work before it stays outside.
    On the session's connection, the rows commit or roll back with the change (a
    savepoint's too), and ids follow the order of ``rows``."""
    if not rows:
        return
    connection = session.connection()
    for start in range(0, len(rows), WRITE_CHUNK):
        connection.execute(insert(OutboxMessage).values(rows[start : start + WRITE_CHUNK]))
    session.info[WRITTEN] = True


def _just_finished(action: m.InstanceAction) -> bool:
    history = inspect(action).attrs.finish_time.history
    added, deleted = list(history.added or ()), list(history.deleted or ())
    return any(v is not None for v in added) and not any(v is not None for v in deleted)


def _ending(action: m.InstanceAction) -> str:
    failed = (action.message or "").startswith(compute.ERROR_PREFIX)
    return "error" if failed else "end"


def _action_event(
    session: Session, settings: Settings, action: m.InstanceAction, phase: str
) -> list[Row]:
    legacy: str | None
    if action.action == compute.LIVE_MIGRATION:
        versioned, legacy = compute.LIVE_EVENTS[phase]
        kind = "InstanceActionPayload"
    else:
        event = compute.EVENTS.get(action.action)
        if event is None:
            return []  # an action Nova tells no one of (lock, addSecurityGroup...)
        versioned = f"{event.versioned}.{phase}"
        legacy = f"{event.legacy}.{phase}" if event.legacy else None
        kind = event.payload
    instance = _instance(session, action.instance_id)
    if instance is None:
        return []
    if phase != "start" and instance.deleted and not versioned.startswith("instance.delete"):
        return []  # cut short by the server's deletion: as Nova, only the delete is told
    # A failure is an ERROR notification, except a live migration's: Nova tells of its
    # rollback as one more INFO step (instance.live_migration_rollback.end).
    priority = "error" if phase == "error" and action.action != compute.LIVE_MIGRATION else "info"
    looked_up = not compute.bare(instance, action, phase)
    ips = compute.addresses(session, instance) if looked_up else []
    publisher = f"nova-compute:{compute.host_name(session, instance) or settings.publisher_host}"
    origin = envelope.Origin(action.request_id, action.user_id, action.project_id)
    common: dict[str, Any] = {
        "exchange": "nova",
        "priority": priority,
        "publisher_id": publisher,
        "resource_id": instance.id,
        "origin": origin,
    }
    rows: list[Row] = []
    if settings.versioned:
        payload = compute.versioned_payload(session, instance, action, kind, ips, looked_up)
        rows.append(
            envelope.row(
                topic=settings.versioned_topic, event_type=versioned, payload=payload, **common
            )
        )
    if settings.legacy and legacy is not None:
        payload = compute.legacy_payload(session, instance, action, ips)
        rows.append(
            envelope.row(topic=settings.topic, event_type=legacy, payload=payload, **common)
        )
    return rows


def _instance(session: Session, instance_id: str) -> m.Instance | None:
    """The server, also when it is being created in this very flush (pending, it is not in
    the identity map yet, and a query would not see it: no autoflush inside a flush)."""
    for obj in session.new:
        if isinstance(obj, m.Instance) and obj.id == instance_id:
            return obj
    return session.get(m.Instance, instance_id)

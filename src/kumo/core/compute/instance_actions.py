"""Instance-action bookkeeping: the record of each request made of a server, and the
lookups that read a request back from its record.

An instance action (``openstack server event list``) is written under the id of the
request that asked for it (``record_action``, by the lifecycle runner and by create) and
finished when its work ends (``end_action``, by agent reports, the scheduler, moves, HA and
stuck-task resolution). Some requests carry a parameter the agent or a later report needs,
and the database is the only truth (DESIGN.md section 3): it waits in the action's message
(a rescue's image, a backup's rotation) or in a row of its own (a snapshot's queued image),
and is read back here. The events of each action are derived from these rows by another
recorder (kumo.core.compute.action_events).

This module imports nothing else of compute, so every part of it (servers, moves,
migrations, reports, block storage's reports) can import it at the top.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow


def record_action(
    session: Session, ctx: Context, instance_id: str, action: str, message: str | None = None
) -> m.InstanceAction:
    """The instance action under the id of the request that asked for it (what a client
    got back as X-OpenStack-Request-ID and looks the action up by, as in Nova); work the
    cloud does on its own (outside a request) gets an id of its own."""
    row = m.InstanceAction(
        instance_id=instance_id,
        action=action,
        request_id=ctx.request_id or "req-" + str(uuid.uuid4()),
        user_id=ctx.user_id,
        project_id=ctx.project_id or "",
        message=message,
    )
    session.add(row)
    return row


def end_action(session: Session, instance_id: str, action: str, message: str | None) -> None:
    # No autoflush: the caller's other changes (the task it just ended) are flushed with
    # this end, so the action-events recorder sees the action's own message (its result).
    with session.no_autoflush:
        row = session.scalars(
            select(m.InstanceAction)
            .where(m.InstanceAction.instance_id == instance_id, m.InstanceAction.action == action)
            .order_by(m.InstanceAction.id.desc())
            .limit(1)
        ).first()
    if row is not None and row.finish_time is None:
        row.finish_time = utcnow()
        if message:
            row.message = message[:4000]


# Snapshots (createImage, createBackup, shelve) -----------------------------------------

# The instance actions whose request an image task carries out.
SNAPSHOT_ACTIONS = ("createImage", "createBackup")
ROTATION_PREFIX = "rotation="


def pending_snapshot(session: Session, instance: m.Instance) -> m.Image | None:
    """The image a running createImage, createBackup or shelve fills: the server's own
    image that has no data yet (queued or saving). The image row is the record of the
    request, linked to its server by the ``instance_uuid`` property (as Nova links a
    snapshot), which snapshot_image keeps; ``image_type`` is the user's to set."""
    candidates = session.scalars(
        select(m.Image)
        .where(m.Image.owner == instance.project_id, m.Image.status.in_(("queued", "saving")))
        .order_by(m.Image.created_at.desc())
    )
    for image in candidates:
        if (image.properties or {}).get("instance_uuid") == instance.id:
            return image
    return None


def drop_snapshot(session: Session, image: m.Image) -> None:
    """A snapshot that will never get its data: deleted, as Nova deletes a failed one."""
    image.status = "deleted"
    image.deleted_at = image.updated_at = utcnow()


def rotate_backups(session: Session, image: m.Image) -> list[str]:
    """After a backup got its data: delete this server's oldest backups of the same type
    beyond the rotation its request asked for (0 deletes them all, the new one too, as
    Nova does). The ids deleted, whose data the caller removes from the image store."""
    props = image.properties or {}
    server_id = str(props.get("instance_uuid") or "")
    if not props.get("backup_type") or not server_id:  # the request's, unlike image_type
        return []
    action = session.scalars(
        select(m.InstanceAction)
        .where(
            m.InstanceAction.instance_id == server_id,
            m.InstanceAction.action == "createBackup",
            m.InstanceAction.finish_time.is_(None),
        )
        .order_by(m.InstanceAction.id.desc())
        .limit(1)
    ).first()
    message = action.message if action is not None else None
    if message is None or not message.startswith(ROTATION_PREFIX):
        return []
    rotation = int(message[len(ROTATION_PREFIX) :])
    action.message = None  # type: ignore[union-attr]  # the request's parameter is used up
    backups = [
        row
        for row in session.scalars(
            select(m.Image)
            .where(m.Image.owner == image.owner, m.Image.status != "deleted")
            .order_by(m.Image.created_at.desc(), m.Image.id.desc())
        )
        if (row.properties or {}).get("instance_uuid") == server_id
        and (row.properties or {}).get("image_type") == "backup"
        and (row.properties or {}).get("backup_type") == props.get("backup_type")
    ]
    rotated = backups[rotation:]
    for row in rotated:
        drop_snapshot(session, row)
    session.flush()
    return [row.id for row in rotated]


# Rescue ---------------------------------------------------------------------------------

RESCUE_IMAGE_PREFIX = "Rescue image "


def rescue_image_id(session: Session, instance: m.Instance) -> str | None:
    """The rescue image of the server's latest rescue request."""
    row = session.scalars(
        select(m.InstanceAction)
        .where(m.InstanceAction.instance_id == instance.id, m.InstanceAction.action == "rescue")
        .order_by(m.InstanceAction.id.desc())
        .limit(1)
    ).first()
    if row is not None and row.message and row.message.startswith(RESCUE_IMAGE_PREFIX):
        return row.message[len(RESCUE_IMAGE_PREFIX) :]
    return instance.image_id


# Crash dump (2.17) ----------------------------------------------------------------------

CRASH_DUMP = "trigger_crash_dump"


def pending_crash_dumps(session: Session, instance: m.Instance) -> list[m.InstanceAction]:
    """The server's crash dump requests its agent has not reported on yet."""
    return list(
        session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == instance.id,
                m.InstanceAction.action == CRASH_DUMP,
                m.InstanceAction.finish_time.is_(None),
            )
        )
    )

"""Volume and snapshot requests that outlived their deadline (DESIGN.md section 3.3): each
ends in the state Cinder would leave it in, with the reason, so an operator can retry or
delete; nothing stays ``creating`` or ``deleting`` for ever. Used by the controller's loop
and by `kumo db check --repair`."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.volume import uploads
from kumo.db import models as m
from kumo.db.types import utcnow

log = logging.getLogger(__name__)

# What a request that never finished leaves a volume as.
VOLUME_OUTCOME = {
    "creating": "error",
    "downloading": "error",
    "deleting": "error_deleting",
    "extending": "error_extending",
}
SNAPSHOT_OUTCOME = {"creating": "error", "deleting": "error_deleting"}
WHY = (
    "the host agent did not report the result before the deadline; check `kumo host list` "
    "and the agent's log, then retry or delete"
)


def resolve_in_session(session: Session) -> int:
    now = utcnow()
    resolved = 0
    for volume in session.scalars(
        select(m.Volume).where(
            m.Volume.deleted.is_(False),
            m.Volume.task_deadline.is_not(None),
            m.Volume.task_deadline < now,
        )
    ):
        status = volume.status
        if status == "uploading":
            uploads.finished(session, volume)
        elif status in VOLUME_OUTCOME:
            volume.status = VOLUME_OUTCOME[status]
            if status == "extending":
                volume.size = volume.previous_size or volume.size
                volume.previous_size = None
        volume.fault = f"{status} timed out: {WHY}"
        volume.task_deadline = None
        volume.observed_generation = volume.generation
        log.warning("volume %s: %s passed its deadline", volume.id, status)
        resolved += 1
    for snapshot in session.scalars(
        select(m.VolumeSnapshot).where(
            m.VolumeSnapshot.deleted.is_(False),
            m.VolumeSnapshot.task_deadline.is_not(None),
            m.VolumeSnapshot.task_deadline < now,
        )
    ):
        snapshot.status = SNAPSHOT_OUTCOME.get(snapshot.status, snapshot.status)
        snapshot.fault = f"timed out: {WHY}"
        snapshot.task_deadline = None
        snapshot.observed_generation = snapshot.generation
        log.warning("snapshot %s: request passed its deadline", snapshot.id)
        resolved += 1
    return resolved

"""Transitional states always have a deadline (DESIGN.md section 3.3): a task that outlives
it is resolved here, never left for a human to clean up in SQL. Used by the controller's
loop and by `kumo db check --repair`."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.compute import migrations, moves, shelve
from kumo.core.compute.servers import (
    SNAPSHOT_ACTIONS,
    drop_snapshot,
    end_action,
    finish_delete,
    pending_snapshot,
)
from kumo.core.compute.states import SHELVE_TASKS, SNAPSHOT_TASKS
from kumo.db import models as m
from kumo.db.types import utcnow

log = logging.getLogger(__name__)


def resolve_in_session(session: Session) -> int:
    resolved = 0
    now = utcnow()
    for instance in session.scalars(
        select(m.Instance).where(
            m.Instance.deleted.is_(False),
            m.Instance.task_deadline.is_not(None),
            m.Instance.task_deadline < now,
        )
    ):
        task = instance.task_state
        if instance.desired_state == "deleted" and instance.host_id is None:
            finish_delete(session, instance)
        elif task == migrations.MIGRATING:
            # The guest keeps running where it is; the migration ends in error.
            migrations.stuck(session, instance)
        elif task in SHELVE_TASKS:
            # The shelve did not happen: the server stays on its host (the agent put the
            # guest back or it never stopped it), the snapshot is dropped.
            shelve.failed(session, instance, f"task {task} timed out")
        elif task in SNAPSHOT_TASKS:
            # A snapshot that never finished harms nobody but its image: the server keeps
            # its state (as Nova does), the image is deleted, the action says why.
            snapshot = pending_snapshot(session, instance)
            if snapshot is not None:
                drop_snapshot(session, snapshot)
            instance.task_state = None
            instance.task_deadline = None
            for action in SNAPSHOT_ACTIONS:
                end_action(session, instance.id, action, f"Error: task {task} timed out")
        else:
            if task == "rebuilding":
                moves.evacuation_stuck(session, instance)
            elif task in ("resize_prep", "resize_migrating", "resize_finish", "resize_reverting"):
                moves.cold_stuck(session, instance)
            instance.vm_state = "error"
            instance.task_state = None
            instance.task_deadline = None
            instance.fault = {
                "code": 500,
                "created": now.isoformat() + "Z",
                "message": f"Task {task} did not finish in time",
                "details": "The host agent did not report the result before the task's "
                "deadline; check `kumo host list` and the agent's log, then "
                "retry the action or delete the server.",
            }
        log.warning("server %s: task %s passed its deadline", instance.id, task)
        resolved += 1
    return resolved

"""Transitional states always have a deadline (DESIGN.md section 3.3): a task that outlives
it is resolved here, never left for a human to clean up in SQL. Used by the controller's
loop and by `kumo db check --repair`.

Each stuck server is resolved by a lifecycle operation (``RESOLVE``, kumo.core.operations)
of its own, as the service: recorded as the server's ``task_deadline`` instance action
(finished, with the reason), and the agents of its host and of its latest migration's
hosts woken after the commit, so that they see the new state now rather than at their
next poll. A server that is no longer stuck when its transaction runs (the agent reported
in between) is left alone and nothing is recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import operations
from kumo.core.compute import migrations, moves, shelve
from kumo.core.compute.instance_actions import (
    SNAPSHOT_ACTIONS,
    drop_snapshot,
    end_action,
    pending_snapshot,
)
from kumo.core.compute.servers import finish_delete
from kumo.core.compute.states import SHELVE_TASKS, SNAPSHOT_TASKS
from kumo.core.operations import Env, Operation, Result
from kumo.core.policy import SERVICE, Context
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.types import utcnow

log = logging.getLogger(__name__)

ACTION = "task_deadline"


@dataclass(frozen=True)
class StuckTask:
    """A server whose task may have passed its deadline (checked again in the operation)."""

    server_id: str


def stuck_servers(session: Session) -> list[str]:
    """The live servers whose task passed its deadline, oldest deadline first."""
    return list(
        session.scalars(
            select(m.Instance.id)
            .where(
                m.Instance.deleted.is_(False),
                m.Instance.task_deadline.is_not(None),
                m.Instance.task_deadline < utcnow(),
            )
            .order_by(m.Instance.task_deadline, m.Instance.id)
        )
    )


def resolve_all(db: Database, env: Env | None = None) -> int:
    """Resolve every stuck server, each in its own operation; how many were resolved."""
    with db.session() as session:
        ids = stuck_servers(session)
    env = env or Env(SchedulerConfig(), 0.0)
    return sum(
        1
        for server_id in ids
        if operations.run(db, SERVICE, RESOLVE, StuckTask(server_id), env).value
    )


def _migration_hosts(session: Session, instance: m.Instance) -> tuple[str | None, ...]:
    """Both hosts of the server's latest migration: each may have its part to undo."""
    migration = session.scalars(
        select(m.Migration)
        .where(m.Migration.instance_uuid == instance.id, m.Migration.deleted.is_(False))
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()
    return (migration.source_host_id, migration.dest_host_id) if migration is not None else ()


def _resolve(session: Session, ctx: Context, req: StuckTask, env: Env) -> Result[bool]:
    """The value: whether the server was stuck (and is resolved now)."""
    now = utcnow()
    instance = session.get(m.Instance, req.server_id)
    if (
        instance is None
        or instance.deleted
        or instance.task_deadline is None
        or instance.task_deadline >= now
    ):
        return Result(False)
    task = instance.task_state
    hosts = _migration_hosts(session, instance)
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
    message = f"Error: task {task} did not finish before its deadline"
    return Result(True, instance, message=message, other_hosts=hosts, finished=True)


RESOLVE = Operation(ACTION, StuckTask, _resolve)

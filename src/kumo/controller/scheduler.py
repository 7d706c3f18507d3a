"""The scheduler: place each new (or unshelved) server on a host, claiming its resources
atomically.

The host is chosen by kumo.core.compute.placement, the one table of filters and weighers
that every move uses too. The allocation row and the host assignment are written in one
transaction under the claims lock, so racing placements never overcommit (DESIGN.md
section 3.4): the placement operation (kumo.core.compute.scheduling), run through the
lifecycle. No host fits: the server goes to ERROR with a fault that says why.
"""

from __future__ import annotations

from sqlalchemy import select

from kumo.config import SchedulerConfig
from kumo.controller.metrics import PLACEMENT_SECONDS
from kumo.core import operations
from kumo.core.compute import scheduling
from kumo.core.compute.scheduling import WAITING_TASKS
from kumo.core.policy import SERVICE
from kumo.db import models as m
from kumo.db.engine import Database

BATCH = 50  # servers placed per transaction: one lock, one capacity read for all of them


def place(
    db: Database, instance_id: str, cfg: SchedulerConfig, heartbeat_timeout: float
) -> str | None:
    """Place one server; returns the host id, or None when it went to ERROR (or was gone)."""
    return place_many(db, [instance_id], cfg, heartbeat_timeout).get(instance_id)


def place_many(
    db: Database, instance_ids: list[str], cfg: SchedulerConfig, heartbeat_timeout: float
) -> dict[str, str | None]:
    """Place servers in one transaction, in the order given (scheduling.PLACE, through the
    lifecycle: one round of locking for a burst of creates; the chosen hosts' agents are
    woken after the commit). Returns, per server looked at, the chosen host id or None
    (ERROR, or nothing to do)."""
    request = scheduling.PlaceRequest(tuple(instance_ids))
    env = operations.Env(cfg, heartbeat_timeout)
    return operations.run(db, SERVICE, scheduling.PLACE, request, env).value


def pending(db: Database, limit: int = 500) -> list[str]:
    with db.session() as session:
        return list(
            session.scalars(
                select(m.Instance.id)
                .where(
                    m.Instance.task_state.in_(WAITING_TASKS),
                    m.Instance.host_id.is_(None),
                    m.Instance.deleted.is_(False),
                )
                .order_by(m.Instance.created_at)
                .limit(limit)
            )
        )


def schedule_pending(db: Database, cfg: SchedulerConfig, heartbeat_timeout: float) -> int:
    waiting = pending(db)
    placed = 0
    for start in range(0, len(waiting), BATCH):
        with PLACEMENT_SECONDS.time():
            chosen = place_many(db, waiting[start : start + BATCH], cfg, heartbeat_timeout)
        placed += sum(1 for host in chosen.values() if host)
    return placed

"""The scheduler: place each new (or unshelved) server on a host, claiming its resources
atomically.

The host is chosen by kumo.core.compute.placement, the one table of filters and weighers
that every move uses too. The allocation row and the host assignment are written in one
transaction under the claims lock, so racing placements never overcommit (DESIGN.md
section 3.4). No host fits: the server goes to ERROR with a fault that says why.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.controller.metrics import PLACEMENT_SECONDS
from kumo.core import wakeup
from kumo.core.compute import nics, placement, shelve
from kumo.core.compute.servers import TASK_DEADLINE
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow

log = logging.getLogger(__name__)


# A new server waits for a host in "scheduling", an unshelved one in "unshelving".
WAITING_TASKS = ("scheduling", shelve.UNSHELVING)
BATCH = 50  # servers placed per transaction: one lock, one capacity read for all of them


def place(
    db: Database, instance_id: str, cfg: SchedulerConfig, heartbeat_timeout: float
) -> str | None:
    """Place one server; returns the host id, or None when it went to ERROR (or was gone)."""
    return place_many(db, [instance_id], cfg, heartbeat_timeout).get(instance_id)


def place_many(
    db: Database, instance_ids: list[str], cfg: SchedulerConfig, heartbeat_timeout: float
) -> dict[str, str | None]:
    """Place servers in one transaction, in the order given: the claims lock is taken and
    the hosts' free capacity read once, then decremented in memory as each server is
    placed, so a burst of creates costs one round of locking instead of one per server.
    Returns, per server looked at, the chosen host id or None (ERROR, or nothing to do)."""
    placed: dict[str, str | None] = {}
    with db.session() as session:
        lock_for_claims(session)
        states = placement.host_states(session, cfg, heartbeat_timeout)
        # No host registered at all: a cloud starting up (kumo up's agent registers a moment
        # after the API answers). Servers wait that long for one before No valid host.
        if not states:
            young = utcnow() - dt.timedelta(seconds=heartbeat_timeout)
            instance_ids = _old_enough_to_fail(session, instance_ids, young)
        # The batch's rows and which of them belong to a server group, in two queries.
        rows = {
            i.id: i
            for i in session.scalars(select(m.Instance).where(m.Instance.id.in_(instance_ids)))
        }
        grouped = set(
            session.scalars(
                select(m.ServerGroupMember.instance_id).where(
                    m.ServerGroupMember.instance_id.in_(instance_ids)
                )
            )
        )
        for instance_id in instance_ids:
            instance = rows.get(instance_id)
            if (
                instance is None
                or instance.deleted
                or instance.host_id is not None
                or instance.task_state not in WAITING_TASKS
            ):
                placed[instance_id] = None
                continue
            # A member's peers are read as placed so far (earlier ones of this batch too).
            request = placement.request_for(
                session, instance, placement.BOOT, in_group=instance_id in grouped
            )
            selection = placement.select_hosts(request, states, cfg)
            chosen = selection.best
            if chosen is None:
                _no_valid_host(session, instance, selection)
                placed[instance_id] = None
                continue
            placement.claim(session, instance.id, chosen, request.need)
            instance.host_id = chosen.host.id
            nics.follow_host(session, instance)
            # As Nova's conductor: the server is now in its host's zone.
            instance.availability_zone = chosen.zone
            instance.requested_host_id = None
            instance.task_state = "spawning"
            instance.task_deadline = utcnow() + TASK_DEADLINE
            placed[instance_id] = chosen.host.id
    hosts = {h for h in placed.values() if h}
    if hosts:
        wakeup.notify(*(wakeup.host_topic(h) for h in hosts))
    return placed


def _old_enough_to_fail(session: Session, instance_ids: list[str], young: dt.datetime) -> list[str]:
    """Of `instance_ids`, those created before `young` (they fail: no host came)."""
    if not instance_ids:
        return []
    query = select(m.Instance.id).where(
        m.Instance.id.in_(instance_ids), m.Instance.created_at < young
    )
    old = set(session.scalars(query))
    kept = [i for i in instance_ids if i in old]
    if len(kept) < len(instance_ids):
        log.info("%d server(s) wait for a host to register", len(instance_ids) - len(kept))
    return kept


def _no_valid_host(session: Session, instance: m.Instance, selection: placement.Selection) -> None:
    """No host fits: an unshelve waits SHELVED_OFFLOADED, a new server goes to ERROR, with
    a fault that says, host by host, why."""
    detail = selection.explain() or "no hosts are registered"
    if shelve.no_host(session, instance, detail):
        log.info("server %s: no valid host to unshelve on (%s)", instance.id, detail)
        return
    instance.vm_state = "error"
    instance.task_state = None
    instance.task_deadline = None
    instance.fault = {
        "code": 500,
        "created": utcnow().isoformat() + "Z",
        "message": f"{placement.NO_VALID_HOST} There are not enough hosts available.",
        "details": detail,
    }
    log.info("server %s: no valid host (%s)", instance.id, detail)


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

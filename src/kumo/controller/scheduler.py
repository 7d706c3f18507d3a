"""The scheduler: place each new server on a host, claiming its resources atomically.

Filters (enabled, alive, hypervisor present, availability zone, capacity after allocation
ratios, hard server-group policies) and weighers (soft server-group policies, then spread or
pack). The allocation row and the host assignment are
written in one transaction under the claims lock, so racing placements never overcommit
(DESIGN.md section 3.4). No host fits: the server goes to ERROR with a fault that says why.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.controller.metrics import PLACEMENT_SECONDS
from kumo.core import wakeup
from kumo.core.compute import aggregates, nics, server_groups, shelve
from kumo.core.compute.capacity import Capacity, capacities, shortfalls
from kumo.core.compute.servers import TASK_DEADLINE, flavor_need
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
        candidates, reasons = capacities(session, cfg, heartbeat_timeout)
        # No host registered at all: a cloud starting up (kumo up's agent registers a moment
        # after the API answers). Servers wait that long for one before No valid host.
        if not candidates and not reasons:
            young = utcnow() - dt.timedelta(seconds=heartbeat_timeout)
            instance_ids = _old_enough_to_fail(session, instance_ids, young)
        zones = aggregates.host_zones(session)  # host -> zone, once for the batch
        free = {c.host.id: [c.vcpus, c.memory_mb, c.disk_gb] for c in candidates}
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
            need = flavor_need(instance.flavor)
            chosen = _choose(
                session, instance, need, candidates, free, list(reasons), cfg,
                instance_id in grouped, zones,
            )  # fmt: skip
            if chosen is None:
                placed[instance_id] = None
                continue
            room = free[chosen.id]
            for index, amount in enumerate(need):
                room[index] -= amount
            session.add(
                m.Allocation(
                    instance_id=instance.id,
                    host_id=chosen.id,
                    vcpus=need[0],
                    memory_mb=need[1],
                    disk_gb=need[2],
                )
            )
            instance.host_id = chosen.id
            nics.follow_host(session, instance)
            # As Nova's conductor: the server is now in its host's zone.
            instance.availability_zone = aggregates.zone_of(zones, chosen.id)
            instance.requested_host_id = None
            instance.task_state = "spawning"
            instance.task_deadline = utcnow() + TASK_DEADLINE
            placed[instance_id] = chosen.id
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


def _choose(
    session: Session,
    instance: m.Instance,
    need: tuple[int, int, int],
    candidates: list[Capacity],
    free: dict[str, list[float]],
    reasons: list[str],
    cfg: SchedulerConfig,
    in_group: bool,
    zones: dict[str, str],
) -> m.Host | None:
    """Filter and weigh the hosts for one server; no host fits: the server goes to ERROR
    with a fault that says, host by host, why.

    A host an admin forced (``az:host``) is the only candidate, whatever its zone (Nova
    bypasses the zone filter for it); otherwise a requested zone keeps that zone's hosts."""
    fitting = []
    wanted = instance.availability_zone
    network_types = nics.network_types_of(session, instance)
    for cap in candidates:
        if instance.requested_host_id is not None:
            if cap.host.id != instance.requested_host_id:
                reasons.append(f"{cap.host.name}: not the requested host")
                continue
        elif wanted:
            zone = aggregates.zone_of(zones, cap.host.id)
            if zone != wanted:
                reasons.append(f"{cap.host.name}: in availability zone {zone}, not {wanted}")
                continue
        missing = nics.types_missing_on(cap.host, network_types)
        if missing:
            why = nics.type_reason(cap.host, missing[0])
            reasons.append(
                f"{cap.host.name}: cannot carry {', '.join(missing)} networks"
                + (f" ({why})" if why else "")
            )
            continue
        room = free[cap.host.id]
        short = shortfalls(room, need)
        if short:
            reasons.append(f"{cap.host.name}: not enough {', '.join(short)}")
        else:
            fitting.append(cap)
    # A member's peers are read as placed so far (earlier ones of this batch included).
    group = server_groups.placement_for(session, instance.id) if in_group else None
    if group is not None and group.hard:
        kept = [c for c in fitting if server_groups.allows(group, c.host.id)]
        if fitting and not kept:
            reasons.append(
                f"server group {group.group_id} policy {group.policy}: no host with "
                "room satisfies it"
            )
        fitting = kept
    if not fitting:
        detail = "; ".join(reasons) or "no hosts are registered"
        if shelve.no_host(session, instance, detail):
            log.info("server %s: no valid host to unshelve on (%s)", instance.id, detail)
            return None
        instance.vm_state = "error"
        instance.task_state = None
        instance.task_deadline = None
        instance.fault = {
            "code": 500,
            "created": utcnow().isoformat() + "Z",
            "message": "No valid host was found. There are not enough hosts available.",
            "details": detail,
        }
        log.info("server %s: no valid host (%s)", instance.id, detail)
        return None
    fitting.sort(key=lambda c: free[c.host.id][1], reverse=cfg.weigher == "spread")
    if group is not None and not group.hard:
        # Stable sort: the soft group policy first, spread/pack among equals.
        fitting.sort(key=lambda c: server_groups.weight(group, c.host.id), reverse=True)
    return fitting[0].host


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

"""The scheduler: place each new server on a host, claiming its resources atomically.

Filters (enabled, alive, hypervisor present, availability zone, capacity after allocation
ratios, hard server-group policies) and weighers (soft server-group policies, then spread or
pack). The allocation row and the host assignment are
written in one transaction under the claims lock, so racing placements never overcommit
(DESIGN.md section 3.4). No host fits: the server goes to ERROR with a fault that says why.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from kumo.config import SchedulerConfig
from kumo.core import wakeup
from kumo.core.compute import server_groups
from kumo.core.compute.capacity import capacities
from kumo.core.compute.servers import TASK_DEADLINE
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow

log = logging.getLogger(__name__)


def place(
    db: Database, instance_id: str, cfg: SchedulerConfig, heartbeat_timeout: float
) -> str | None:
    """Place one server; returns the host id, or None when it went to ERROR (or was gone)."""
    with db.session() as session:
        lock_for_claims(session, host_ids=list(session.scalars(select(m.Host.id))))
        instance = session.get(m.Instance, instance_id)
        if (
            instance is None
            or instance.deleted
            or instance.host_id is not None
            or instance.task_state != "scheduling"
        ):
            return None
        flavor = instance.flavor
        need = (
            flavor["vcpus"],
            flavor["ram"],
            flavor.get("disk", 0)
            + flavor.get("ephemeral", 0)
            + (flavor.get("swap", 0) + 1023) // 1024,
        )
        candidates, reasons = capacities(session, cfg, heartbeat_timeout)
        fitting = []
        for cap in candidates:
            short = [
                what
                for what, free, want in (
                    ("vCPUs", cap.vcpus, need[0]),
                    ("RAM", cap.memory_mb, need[1]),
                    ("disk", cap.disk_gb, need[2]),
                )
                if free < want
            ]
            if short:
                reasons.append(f"{cap.host.name}: not enough {', '.join(short)}")
            else:
                fitting.append(cap)
        group = server_groups.placement_for(session, instance.id)
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
            instance.vm_state = "error"
            instance.task_state = None
            instance.task_deadline = None
            instance.fault = {
                "code": 500,
                "created": utcnow().isoformat() + "Z",
                "message": "No valid host was found. There are not enough hosts available.",
                "details": detail,
            }
            log.info("server %s: no valid host (%s)", instance_id, detail)
            return None
        fitting.sort(key=lambda c: c.memory_mb, reverse=cfg.weigher == "spread")
        if group is not None and not group.hard:
            # Stable sort: the soft group policy first, spread/pack among equals.
            fitting.sort(key=lambda c: server_groups.weight(group, c.host.id), reverse=True)
        chosen = fitting[0].host
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
        instance.task_state = "spawning"
        instance.task_deadline = utcnow() + TASK_DEADLINE
        host_id = chosen.id
    wakeup.notify(wakeup.host_topic(host_id))
    return host_id


def pending(db: Database, limit: int = 500) -> list[str]:
    with db.session() as session:
        return list(
            session.scalars(
                select(m.Instance.id)
                .where(
                    m.Instance.task_state == "scheduling",
                    m.Instance.host_id.is_(None),
                    m.Instance.deleted.is_(False),
                )
                .order_by(m.Instance.created_at)
                .limit(limit)
            )
        )


def schedule_pending(db: Database, cfg: SchedulerConfig, heartbeat_timeout: float) -> int:
    placed = 0
    for instance_id in pending(db):
        if place(db, instance_id, cfg, heartbeat_timeout):
            placed += 1
    return placed

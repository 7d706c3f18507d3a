"""The cloud's state as a monitoring system graphs it, read from the database.

Everything here is a handful of aggregate queries, run when Prometheus scrapes /metrics
(kumo.api.cloud_metrics). Computed from the database, the one truth (DESIGN.md section 3),
the numbers are cloud-wide and the same on every API copy, survive restarts, and cannot
drift from what the scheduler and os-hypervisors see: host usage comes from
:func:`kumo.core.compute.hypervisors.usages`, the rows os-hypervisors shows.

Operations are the server actions recorded for os-instance-actions: each has a start time,
a finish time once its end is known, and a message that starts with "Error" when it
failed. Summing those rows at scrape time (instead of observing a histogram where each
action ends) covers every process that ends actions (API copies taking agent reports, the
controller's timeouts) with no code on those paths, and loses nothing at a restart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import ColumnElement

from kumo.config import SchedulerConfig
from kumo.core.compute import hypervisors, placement, states
from kumo.core.network.dhcp_ports import DHCP_OWNER
from kumo.db import models as m
from kumo.db.expressions import seconds_between
from kumo.db.outbox_tables import OutboxMessage
from kumo.db.types import utcnow

MIB = 1024**2
GIB = 1024**3
FAILED_PREFIX = "Error"  # how a failed action's message starts (Nova's "Error")


@dataclass(frozen=True)
class HostFigures:
    """One host. Capacity is what the scheduler may hand out: (inventory - reserved) x
    allocation ratio; used is what the allocations hold; free may go below zero when the
    ratios were lowered under existing allocations. Sizes in bytes."""

    name: str
    up: bool
    enabled: bool
    heartbeat_age_seconds: float | None  # None: it never sent one
    capacity_vcpus: float
    capacity_memory_bytes: float
    capacity_disk_bytes: float
    used_vcpus: int
    used_memory_bytes: int
    used_disk_bytes: int
    servers: int
    dhcp_servers: int
    routers: int

    @property
    def free_vcpus(self) -> float:
        return self.capacity_vcpus - self.used_vcpus

    @property
    def free_memory_bytes(self) -> float:
        return self.capacity_memory_bytes - self.used_memory_bytes

    @property
    def free_disk_bytes(self) -> float:
        return self.capacity_disk_bytes - self.used_disk_bytes


@dataclass(frozen=True)
class ActionFigures:
    """The recorded actions of one kind: how many were asked for, how many failed, and the
    durations of those whose end is recorded, as cumulative counts per bucket bound."""

    action: str
    started: int
    failed: int
    finished: int
    seconds_sum: float
    buckets: tuple[int, ...]  # finished ones lasting at most each bound, in bound order


def servers_by_status(session: Session) -> dict[tuple[str, str], int]:
    """Live servers per (project id, OpenStack status)."""
    counts: Counter[tuple[str, str]] = Counter()
    query = (
        select(m.Instance.project_id, m.Instance.vm_state, m.Instance.task_state, func.count())
        .where(m.Instance.deleted.is_(False))
        .group_by(m.Instance.project_id, m.Instance.vm_state, m.Instance.task_state)
    )
    for project_id, vm_state, task_state, count in session.execute(query):
        counts[(project_id, states.status(vm_state, task_state))] += count
    return dict(counts)


def _per_host(
    session: Session, column: InstrumentedAttribute[str | None], *where: ColumnElement[bool]
) -> dict[str, int]:
    """Rows per host id, for rows that name a host."""
    rows = session.execute(
        select(column, func.count()).where(column.is_not(None), *where).group_by(column)
    )
    return {str(host_id): int(count) for host_id, count in rows}


def host_figures(session: Session, cfg: SchedulerConfig, timeout: float) -> list[HostFigures]:
    """Every registered host, in name order. The DHCP servers are the host's DHCP ports
    (one dnsmasq per network with guests there); the routers, those it carries."""
    dhcp = _per_host(session, m.Port.binding_host_id, m.Port.device_owner == DHCP_OWNER)
    routers = _per_host(session, m.Router.host_id)
    result = []
    for usage in hypervisors.usages(session, cfg, timeout):
        host = usage.host
        memory_used = usage.memory_mb_used - cfg.reserved_host_memory_mb
        disk_used = usage.local_gb_used - cfg.reserved_host_disk_gb
        vcpus, memory_mb, disk_gb = placement.capacity(
            cfg, usage.vcpus, usage.memory_mb, usage.local_gb
        )
        result.append(
            HostFigures(
                name=host.name,
                up=usage.status.up,
                enabled=host.enabled,
                heartbeat_age_seconds=usage.status.seconds_since_heartbeat,
                capacity_vcpus=vcpus,
                capacity_memory_bytes=memory_mb * MIB,
                capacity_disk_bytes=disk_gb * GIB,
                used_vcpus=usage.vcpus_used,
                used_memory_bytes=memory_used * MIB,
                used_disk_bytes=disk_used * GIB,
                servers=usage.running_vms,
                dhcp_servers=dhcp.get(host.id, 0),
                routers=routers.get(host.id, 0),
            )
        )
    return result


def unplaced_routers(session: Session) -> int:
    """Routers no host carries yet (made while no host was up; the controller places them)."""
    query = select(func.count()).select_from(m.Router).where(m.Router.host_id.is_(None))
    return int(session.scalar(query) or 0)


@dataclass(frozen=True)
class OutboxFigures:
    """The notifications committed and not yet confirmed by the broker: how many, and the
    age of the oldest (None: the outbox is empty). A backlog that grows means the broker
    is unreachable or the publisher is not running (no active controller)."""

    rows: int
    oldest_age_seconds: float | None


def outbox_figures(session: Session) -> OutboxFigures:
    query = select(func.count(), func.min(OutboxMessage.created_at))
    count, oldest = session.execute(query).one()
    age = (utcnow() - oldest).total_seconds() if oldest is not None else None
    return OutboxFigures(int(count or 0), age)


def action_figures(session: Session, bounds: Sequence[float]) -> list[ActionFigures]:
    """Per action name, in name order. One query groups the rows by action and by the
    first bucket each finished one falls in (-1: not finished), so each row's duration is
    worked out about as many times as its bucket's rank, not once per bucket: that is
    most of a scrape's cost (bench/README.md, metrics_scrape.py). Python makes the counts
    cumulative."""
    action = m.InstanceAction
    seconds = seconds_between(action.start_time, action.finish_time)
    # Literals, not bound parameters: PostgreSQL matches the grouped expression with the
    # selected one by its text, and two renderings of a parameter differ.
    bucket = case(
        (action.finish_time.is_(None), literal_column("-1")),
        *(
            (seconds <= literal_column(repr(float(bound))), literal_column(str(index)))
            for index, bound in enumerate(bounds)
        ),
        else_=literal_column(str(len(bounds))),
    )
    failed = case((action.message.like(FAILED_PREFIX + "%"), 1), else_=0)
    query = select(
        action.action, bucket, func.count(), func.sum(failed), func.sum(seconds)
    ).group_by(action.action, bucket)  # fmt: skip
    totals: dict[str, list[float]] = {}  # started, failed, finished, seconds
    counts: dict[str, list[int]] = {}  # finished ones per first bucket (+Inf last)
    for name, index, count, failures, total in session.execute(query):
        row = totals.setdefault(name, [0, 0, 0, 0.0])
        row[0] += count
        row[1] += failures or 0
        if index >= 0:
            row[2] += count
            row[3] += float(total or 0)
            counts.setdefault(name, [0] * (len(bounds) + 1))[index] += count
    return [
        ActionFigures(
            action=str(name),
            started=int(started),
            failed=int(failures),
            finished=int(finished),
            seconds_sum=max(0.0, total),
            buckets=tuple(accumulate(counts.get(name, [0] * len(bounds))[: len(bounds)])),
        )
        for name, (started, failures, finished, total) in sorted(totals.items())
    ]

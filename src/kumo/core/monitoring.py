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

from sqlalchemy import case, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.expression import ColumnElement

from kumo.config import SchedulerConfig
from kumo.core.compute import hypervisors, states
from kumo.core.network.dhcp_ports import DHCP_OWNER
from kumo.db import models as m
from kumo.db.expressions import seconds_between

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
        result.append(
            HostFigures(
                name=host.name,
                up=usage.status.up,
                enabled=host.enabled,
                heartbeat_age_seconds=usage.status.seconds_since_heartbeat,
                capacity_vcpus=usage.vcpus * cfg.cpu_allocation_ratio,
                capacity_memory_bytes=(usage.memory_mb - cfg.reserved_host_memory_mb)
                * cfg.ram_allocation_ratio
                * MIB,
                capacity_disk_bytes=(usage.local_gb - cfg.reserved_host_disk_gb)
                * cfg.disk_allocation_ratio
                * GIB,
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


def action_figures(session: Session, bounds: Sequence[float]) -> list[ActionFigures]:
    """Per action name, in name order: one grouped query, durations summed in SQL."""
    action = m.InstanceAction
    seconds = seconds_between(action.start_time, action.finish_time)
    query = select(
        action.action,
        func.count(),
        func.sum(case((action.message.like(FAILED_PREFIX + "%"), 1), else_=0)),
        func.count(action.finish_time),
        func.sum(seconds),
        *(func.sum(case((seconds <= bound, 1), else_=0)) for bound in bounds),
    ).group_by(action.action).order_by(action.action)  # fmt: skip
    return [
        ActionFigures(
            action=str(name),
            started=int(started),
            failed=int(failed or 0),
            finished=int(finished),
            seconds_sum=max(0.0, float(total or 0)),
            buckets=tuple(int(b or 0) for b in per_bucket),
        )
        for name, started, failed, finished, total, *per_bucket in session.execute(query)
    ]

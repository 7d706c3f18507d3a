"""Simple tenant usage (os-simple-tenant-usage): server-hours in a period, per project.

Computed from the usage ledger (DESIGN.md rule 9), which keeps every interval of every
server, deleted or not, with the flavor it had then: a resize in the period counts each
flavor for its own hours, and usage for a past period is still right after its servers
are gone. The instance rows (kept soft-deleted) give the names and launch times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core import usage_report
from kumo.core.errors import BadRequest
from kumo.core.usage_report import parse_time
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.db.usage_tables import UsageInterval as U


def period(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    now = utcnow()
    begin, stop = parse_time(start, now), parse_time(end, now)
    if begin > stop:
        raise BadRequest("Invalid start time. The start time cannot occur after the end time.")
    return begin, stop


@dataclass
class ProjectUsage:
    project_id: str
    start: dt.datetime
    stop: dt.datetime
    total_hours: float = 0.0
    total_vcpus_usage: float = 0.0
    total_memory_mb_usage: float = 0.0
    total_local_gb_usage: float = 0.0
    server_usages: list[dict[str, Any]] = field(default_factory=list)


def _server(i: m.Instance, first: dt.datetime, hours: float, now: dt.datetime) -> dict[str, Any]:
    flavor = i.flavor or {}
    terminated = i.deleted or i.vm_state == "deleted"
    started = i.launched_at or first
    ended = i.terminated_at if terminated else None
    uptime = ((ended or now) - started).total_seconds()
    return {
        "instance_id": i.id,
        "name": i.name,
        "hours": hours,
        "memory_mb": int(flavor.get("ram", 0)),
        "local_gb": int(flavor.get("disk", 0)) + int(flavor.get("ephemeral", 0)),
        "vcpus": int(flavor.get("vcpus", 0)),
        "tenant_id": i.project_id,
        "flavor": str(flavor.get("name", i.flavor_id)),
        "started_at": started,
        "ended_at": ended,
        "state": "terminated" if terminated else i.vm_state,
        "uptime": int(uptime),
    }


def usages(
    session: Session, start: dt.datetime, stop: dt.datetime, project_id: str | None = None
) -> list[ProjectUsage]:
    """Servers billed during [start, stop], grouped by project (all projects if None).

    Summed from the usage ledger's server intervals (every state class: Nova counts a
    server from launch to termination whatever its state), each clipped to the period as
    Nova clips a server's life: an open interval counts up to ``stop``."""
    if start >= stop:
        return []
    seconds = usage_report.clipped_seconds(start, stop)
    query = (
        select(
            U.project_id,
            U.resource_id,
            U.vcpus,
            U.memory_mb,
            U.disk_gb,
            func.min(U.started_at),
            func.sum(seconds),
        )
        .where(U.resource_type == "server", *usage_report.overlapping(start, stop))
        .group_by(U.project_id, U.resource_id, U.vcpus, U.memory_mb, U.disk_gb)
    )
    if project_id is not None:
        query = query.where(U.project_id == project_id)
    rows = session.execute(query).all()
    instances = {
        i.id: i
        for chunk in range(0, len(rows), 500)
        for i in session.scalars(
            select(m.Instance).where(m.Instance.id.in_([r[1] for r in rows[chunk : chunk + 500]]))
        )
    }
    # One server's rows (one per flavor it had) summed: its hours and first start.
    servers: dict[tuple[str, str], list[Any]] = {}
    for pid, server_id, vcpus, ram, disk, first, secs in rows:
        hours = float(secs or 0.0) / 3600.0
        acc = servers.setdefault((pid, server_id), [first, 0.0, 0.0, 0.0, 0.0])
        acc[0] = min(acc[0], first)
        acc[1] += hours
        acc[2] += hours * vcpus
        acc[3] += hours * ram
        acc[4] += hours * disk
    now = utcnow()
    result: dict[str, ProjectUsage] = {}
    for (pid, server_id), (first, hours, vcpu_h, ram_h, disk_h) in sorted(
        servers.items(), key=lambda kv: (kv[0][0], kv[1][0], kv[0][1])
    ):
        instance = instances.get(server_id)
        if instance is None:
            continue
        u = result.setdefault(pid, ProjectUsage(pid, start, stop))
        u.total_hours += hours
        u.total_vcpus_usage += vcpu_h
        u.total_memory_mb_usage += ram_h
        u.total_local_gb_usage += disk_h
        u.server_usages.append(_server(instance, first, hours, now))
    return list(result.values())

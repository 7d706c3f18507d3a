"""Simple tenant usage (os-simple-tenant-usage): server-hours in a period, per project.

Computed from instance rows alone: ``launched_at`` and ``terminated_at`` bound each
server's life and deleted rows are kept (DESIGN.md section 3.7), so usage for a past
period is still right after its servers are gone. Nothing is counted in advance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest
from kumo.db import models as m
from kumo.db.types import utcnow

_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d %H:%M:%S.%f")


def parse_time(raw: str | None, now: dt.datetime) -> dt.datetime:
    """Nova's accepted forms; a missing value means now. Zones are converted to UTC."""
    if not raw:
        return now
    text = raw.strip()
    for fmt in _FORMATS:
        try:
            return dt.datetime.strptime(text, fmt)
        except ValueError:
            pass
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"Invalid datetime string: {raw}") from None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


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


def _hours(i: m.Instance, start: dt.datetime, stop: dt.datetime) -> float:
    if i.launched_at is None or i.launched_at > stop:
        return 0.0
    if i.terminated_at is not None and i.terminated_at < start:
        return 0.0
    begin = max(i.launched_at, start)
    end = min(i.terminated_at or stop, stop)
    return max((end - begin).total_seconds(), 0.0) / 3600.0


def _server(i: m.Instance, hours: float, now: dt.datetime) -> dict[str, Any]:
    flavor = i.flavor or {}
    terminated = i.deleted or i.vm_state == "deleted"
    assert i.launched_at is not None
    ended = i.terminated_at if terminated else None
    uptime = ((ended or now) - i.launched_at).total_seconds()
    return {
        "instance_id": i.id,
        "name": i.name,
        "hours": hours,
        "memory_mb": int(flavor.get("ram", 0)),
        "local_gb": int(flavor.get("disk", 0)) + int(flavor.get("ephemeral", 0)),
        "vcpus": int(flavor.get("vcpus", 0)),
        "tenant_id": i.project_id,
        "flavor": str(flavor.get("name", i.flavor_id)),
        "started_at": i.launched_at,
        "ended_at": ended,
        "state": "terminated" if terminated else i.vm_state,
        "uptime": int(uptime),
    }


def usages(
    session: Session, start: dt.datetime, stop: dt.datetime, project_id: str | None = None
) -> list[ProjectUsage]:
    """Servers that ran during [start, stop], grouped by project (all projects if None)."""
    query = (
        select(m.Instance)
        .where(
            m.Instance.launched_at.is_not(None),
            m.Instance.launched_at < stop,
            or_(m.Instance.terminated_at.is_(None), m.Instance.terminated_at > start),
        )
        .order_by(m.Instance.project_id, m.Instance.launched_at, m.Instance.id)
    )
    if project_id is not None:
        query = query.where(m.Instance.project_id == project_id)
    now = utcnow()
    result: dict[str, ProjectUsage] = {}
    for i in session.scalars(query):
        hours = _hours(i, start, stop)
        server = _server(i, hours, now)
        u = result.setdefault(i.project_id, ProjectUsage(i.project_id, start, stop))
        u.total_hours += hours
        u.total_vcpus_usage += hours * server["vcpus"]
        u.total_memory_mb_usage += hours * server["memory_mb"]
        u.total_local_gb_usage += hours * server["local_gb"]
        u.server_usages.append(server)
    return list(result.values())

"""Usage over a period, per project, from the ledger (``kumo usage report``, /kumo/v1/usage).

Each interval is clipped to the period (and an open one to now: nothing is billed in
advance), then summed per project in the database, so a month of a large cloud is one
grouped query, not a row per interval in Python. The dimensions are OpenNebula showback's
(CPU, memory and disk hours) split by the server's state class, plus block storage,
images and floating IPs; with prices (``[usage.prices]``) each project gets its cost:

- vCPU and RAM are charged while the server holds them on a host (running and stopped);
  a shelved server holds none, its disk lives on as an image billed as images are.
- disk (the flavor's root and ephemeral GiB) while running or stopped.
- volumes, volume snapshots and images per GiB-hour, floating IPs per hour.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, column, func, literal, select, table
from sqlalchemy.orm import Session

from kumo.core import usage_clock
from kumo.core.errors import BadRequest
from kumo.db.expressions import seconds_between
from kumo.db.types import UTCDateTime
from kumo.db.usage_tables import UsageInterval as U

HOUR = 3600.0
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


# Every number a report has, in the order tables and CSV show them.
DIMENSIONS = (
    "running_server_hours",
    "running_vcpu_hours",
    "running_ram_gib_hours",
    "running_disk_gib_hours",
    "stopped_server_hours",
    "stopped_vcpu_hours",
    "stopped_ram_gib_hours",
    "stopped_disk_gib_hours",
    "shelved_server_hours",
    "volume_gib_hours",
    "snapshot_gib_hours",
    "image_gib_hours",
    "floating_ip_hours",
)
# Price keys ([usage.prices]) and the dimensions each one multiplies.
PRICED: dict[str, tuple[str, ...]] = {
    "vcpu_hour": ("running_vcpu_hours", "stopped_vcpu_hours"),
    "ram_gib_hour": ("running_ram_gib_hours", "stopped_ram_gib_hours"),
    "disk_gib_hour": ("running_disk_gib_hours", "stopped_disk_gib_hours"),
    "volume_gib_hour": ("volume_gib_hours",),
    "snapshot_gib_hour": ("snapshot_gib_hours",),
    "image_gib_hour": ("image_gib_hours",),
    "floating_ip_hour": ("floating_ip_hours",),
}


@dataclass
class ProjectUsage:
    project_id: str
    hours: dict[str, float] = field(default_factory=lambda: dict.fromkeys(DIMENSIONS, 0.0))
    cost: float | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"project_id": self.project_id, **self.hours}
        if self.cost is not None:
            body["cost"] = round(self.cost, 6)  # money: no float noise in the 15th digit
        return body


@dataclass
class Report:
    start: dt.datetime
    end: dt.datetime
    projects: list[ProjectUsage]
    total: ProjectUsage


def check_period(start: dt.datetime, end: dt.datetime) -> None:
    if start >= end:
        raise BadRequest("Invalid period: the start must be before the end.")


def parse_period(start: str | None, end: str | None) -> tuple[dt.datetime, dt.datetime]:
    """A period as the API and the CLI take it: both ends required, in any form Nova's
    usage API accepts (ISO 8601, with or without a zone; naive means UTC)."""
    if not start or not end:
        raise BadRequest("Both start and end are required (e.g. start=2026-11-01T00:00:00).")
    now = usage_clock.clock()
    begin, stop = parse_time(start, now), parse_time(end, now)
    check_period(begin, stop)
    return begin, stop


def clipped_seconds(start: dt.datetime, end: dt.datetime) -> Any:
    """SQL: the seconds of each interval inside [start, end] (intervals that overlap it)."""
    lo = literal(start, UTCDateTime())
    hi = literal(end, UTCDateTime())
    begin = case((U.started_at > lo, U.started_at), else_=lo)
    stop = case((U.ended_at.is_(None), hi), (U.ended_at < hi, U.ended_at), else_=hi)
    return seconds_between(begin, stop)


def overlapping(start: dt.datetime, end: dt.datetime) -> Iterable[Any]:
    return (U.started_at < end, (U.ended_at.is_(None)) | (U.ended_at > start))


def _add(
    p: ProjectUsage, kind: str, state: str | None, shape: tuple[int, ...], seconds: float
) -> None:
    hours = seconds / HOUR
    vcpus, ram_mb, disk, size = (q * hours for q in shape)
    seconds = hours
    h = p.hours
    if kind == "server" and state in ("running", "stopped"):
        h[f"{state}_server_hours"] += seconds
        h[f"{state}_vcpu_hours"] += vcpus
        h[f"{state}_ram_gib_hours"] += ram_mb / 1024.0
        h[f"{state}_disk_gib_hours"] += disk
    elif kind == "server" and state == "shelved":
        h["shelved_server_hours"] += seconds
    elif kind in ("volume", "snapshot", "image"):
        h[f"{kind}_gib_hours"] += size
    elif kind == "floating_ip":
        h["floating_ip_hours"] += seconds


def cost(hours: dict[str, float], prices: dict[str, float]) -> float:
    return sum(prices.get(key, 0.0) * sum(hours[d] for d in dims) for key, dims in PRICED.items())


def report(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    project_id: str | None = None,
    prices: dict[str, float] | None = None,
) -> Report:
    """Usage of every project (or one) in [start, end]; ``prices`` (price key -> price,
    keys of PRICED) adds the cost. An open interval counts up to now, never beyond."""
    check_period(start, end)
    stop = min(end, usage_clock.clock())
    projects: dict[str, ProjectUsage] = {}
    if start < stop:
        # Grouped by the quantities too, so each row's clipped seconds are worked out once
        # (a SUM per quantity made SQLite compute them five times); the groups are few
        # (projects x flavors x sizes) and are multiplied out here.
        shape = (U.vcpus, U.memory_mb, U.disk_gb, U.size_gb)
        query = (
            select(
                U.project_id,
                U.resource_type,
                U.state,
                *shape,
                func.sum(clipped_seconds(start, stop)),
            )
            .where(*overlapping(start, stop))
            .group_by(U.project_id, U.resource_type, U.state, *shape)
        )
        if project_id is not None:
            query = query.where(U.project_id == project_id)
        for pid, kind, state, vcpus, ram, disk, size, seconds in session.execute(query):
            p = projects.setdefault(pid, ProjectUsage(pid))
            _add(p, kind, state, (vcpus, ram, disk, size), float(seconds or 0.0))
    found = [projects[k] for k in sorted(projects)]
    total = ProjectUsage("total")
    for p in found:
        for d in DIMENSIONS:
            total.hours[d] += p.hours[d]
    if prices:
        for p in [*found, total]:
            p.cost = cost(p.hours, prices)
    return Report(start, end, found, total)


def as_dict(r: Report) -> dict[str, Any]:
    """The JSON of /kumo/v1/usage and ``kumo usage report --format json``."""
    return {
        "start": r.start.isoformat(),
        "end": r.end.isoformat(),
        "projects": [p.as_dict() for p in r.projects],
        "total": {k: v for k, v in r.total.as_dict().items() if k != "project_id"},
    }


# The two columns of kumo.db.models.Project the report's table shows, as a bare table
# clause: a report maps no ORM model (kumo.db.models maps every class of the cloud, which
# cost `kumo usage report` more than its query: bench/README.md, "usage_report.py").
_PROJECTS = table("projects", column("id"), column("name"))


def project_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    """The names of these projects (id -> name), for a human reader of the report."""
    wanted = list(ids)
    if not wanted:
        return {}
    query = select(_PROJECTS.c.id, _PROJECTS.c.name).where(_PROJECTS.c.id.in_(wanted))
    return {pid: name for pid, name in session.execute(query)}

"""Listing servers (GET /servers and /servers/detail): Nova's filters, sort keys and
pages, in SQL where they can be (a keyset page after the marker; the tag filters are
subqueries), in Python where Nova's semantics need it (a name regex, a status a task shows)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, defer

from kumo.core.compute import nics, states
from kumo.core.compute.server_tags import TagFilters
from kumo.core.errors import BadRequest
from kumo.core.policy import Context
from kumo.db import models as m


@dataclass
class ListFilters:
    all_projects: bool = False
    project_id: str | None = None
    name: str | None = None
    # Each ``status`` asked for (Nova takes the parameter repeated and ignores the ones it
    # does not know while one is known); ``reject_unknown_status``: none known is a 400
    # from 2.38, an empty list before.
    statuses: tuple[str, ...] = ()
    reject_unknown_status: bool = True
    host: str | None = None
    image: str | None = None
    flavor: str | None = None
    changes_since: dt.datetime | None = None
    deleted: bool = False
    ip: str | None = None
    ip6: str | None = None
    tags: TagFilters = field(default_factory=TagFilters)
    limit: int | None = None
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    # Leave out the columns a server view does not show (flavor snapshots, the public
    # key): a listing of 1,000 servers then decodes a third less JSON.
    lean: bool = False


_SORT_KEYS = {
    "created_at",
    "updated_at",
    "display_name",
    "name",
    "uuid",
    "id",
    "vm_state",
    "task_state",
    "power_state",
    "launched_at",
    "terminated_at",
    "host",
    "availability_zone",
    "key_name",
    "launch_index",
    "hostname",
    "project_id",
    "user_id",
}


# Sort keys whose column is never NULL: a keyset page after the marker is plain comparisons.
_NOT_NULL_SORT_KEYS = {"created_at", "name", "id", "project_id", "user_id", "vm_state"}


def list_servers(session: Session, ctx: Context, f: ListFilters) -> list[m.Instance]:
    query = select(m.Instance)
    if f.lean:
        query = query.options(
            defer(m.Instance.flavor),
            defer(m.Instance.old_flavor),
            defer(m.Instance.key_data),
            defer(m.Instance.legacy_tags),
        )
    if not (ctx.is_admin and f.all_projects):
        query = query.where(m.Instance.project_id == ctx.project_id)
    elif f.project_id:
        query = query.where(m.Instance.project_id == f.project_id)
    if f.changes_since is not None:
        query = query.where(m.Instance.updated_at >= f.changes_since)
    elif not (ctx.is_admin and f.deleted):
        query = query.where(m.Instance.deleted.is_(False))
    wanted_statuses = {s.upper() for s in f.statuses} & states.ALL_STATUSES
    if f.statuses:
        if not wanted_statuses:
            if f.reject_unknown_status:
                raise BadRequest("Invalid status value")
            return []
        vm = [states.vm_states_for_status(wanted) for wanted in wanted_statuses]
        if all(vm):  # a status shown by a task (REBOOT, MIGRATING...) spans vm_states
            query = query.where(m.Instance.vm_state.in_([v for vms in vm for v in vms]))
    if f.image:
        query = query.where(m.Instance.image_id == f.image.rstrip("/").rsplit("/", 1)[-1])
    if f.flavor:
        query = query.where(m.Instance.flavor_id == f.flavor.rstrip("/").rsplit("/", 1)[-1])
    if f.host and ctx.is_admin:
        hosts = select(m.Host.id).where(m.Host.name == f.host)
        query = query.where(m.Instance.host_id.in_(hosts))
    query = f.tags.apply(query)
    for ip_pattern, family in ((f.ip, 4), (f.ip6, 6)):
        if ip_pattern:
            matching = nics.servers_with_ip(session, ip_pattern, family)
            query = query.where(m.Instance.id.in_(matching))
    key = {"display_name": "name", "uuid": "id", "host": "host_id"}.get(f.sort_key, f.sort_key)
    if f.sort_key not in _SORT_KEYS:
        raise BadRequest(f"Invalid sort_key: {f.sort_key}")
    if f.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir: {f.sort_dir}")
    column = getattr(m.Instance, key)
    desc = f.sort_dir == "desc"
    order = column.desc() if desc else column.asc()
    tiebreak = m.Instance.id.desc() if desc else m.Instance.id.asc()
    query = query.order_by(order, tiebreak)
    if not (f.name or f.statuses) and key in _NOT_NULL_SORT_KEYS:
        # Every filter is in SQL: so is the page (keyset after the marker, then LIMIT),
        # and a page of 10 costs 10 rows, not the whole list.
        if f.marker is not None:
            after = session.execute(
                query.with_only_columns(column, m.Instance.id).where(m.Instance.id == f.marker)
            ).first()
            if after is None:
                raise BadRequest(f"marker [{f.marker}] not found")
            beyond = (column < after[0]) if desc else (column > after[0])
            past_id = (m.Instance.id < after[1]) if desc else (m.Instance.id > after[1])
            query = query.where(or_(beyond, and_(column == after[0], past_id)))
        if f.limit is not None:
            query = query.limit(f.limit)
        return list(session.scalars(query))
    rows = list(session.scalars(query))
    if f.name:
        try:
            pattern = re.compile(f.name)
        except re.error:
            raise BadRequest(f"Invalid name filter: {f.name}") from None
        rows = [r for r in rows if pattern.search(r.name)]
    if f.statuses:
        # The SQL filter narrowed by vm_state; tasks (REBOOT, RESIZE...) refine the status.
        rows = [r for r in rows if states.status(r.vm_state, r.task_state) in wanted_statuses]
    if f.marker is not None:
        ids = [r.id for r in rows]
        if f.marker not in ids:
            raise BadRequest(f"marker [{f.marker}] not found")
        rows = rows[ids.index(f.marker) + 1 :]
    return rows[: f.limit] if f.limit is not None else rows

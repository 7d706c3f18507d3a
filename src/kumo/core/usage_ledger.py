"""The usage ledger's recorder: an interval per shape of every billable thing, written in the
transaction of the change that gives it that shape (DESIGN.md rule 9).

It is a recorder of ``kumo.core.recording``: before each flush it looks at the servers,
volumes, snapshots, images and floating IPs the session is about to write, computes each
one's billable *shape* from the row as it will be, and when that differs from the shape of
its open interval, closes that interval and opens the next, in the same flush. No code
path that changes those rows has to know about billing, so none can forget it.

What a server is billed as follows its ``vm_state`` (its *state class*):

- ``running``: active, paused, suspended, rescued: the guest exists on its host with its
  vCPUs and RAM; resized (VERIFY_RESIZE) too, unless the server was stopped when resized
  (its ``desired_state``), which it still is.
- ``stopped`` (stopped but held): stopped, shelved-but-not-offloaded, soft-deleted, and
  error *on a host*: the guest is off but the host keeps its claim.
- ``shelved``: shelved_offloaded: nothing on any host; the disk lives on as the shelve
  snapshot, an image billed as images are.
- not billed: building (not yet launched), error without a host, deleted.

While a resize waits for confirm or revert, the server is billed at the flavor it had
(``old_flavor``); the new flavor from the confirm (a revert changes nothing). A move
(migrate, evacuate, live migration) changes the host and so opens an interval on the new
host. Volumes and snapshots are billed from their request until deleted, unless in error;
images while ``active`` with an owner (GiB rounded up); floating IPs while they exist.

Timestamps come from ``kumo.core.usage_clock.clock`` (naive UTC): one flush closes and opens at
the same instant, and a test can drive it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from kumo.core import usage_clock
from kumo.db import models as m
from kumo.db.usage_tables import UsageInterval

RUNNING_STATES = frozenset({"active", "paused", "suspended", "rescued"})
HELD_STATES = frozenset({"stopped", "shelved", "soft-delete"})
GIB = 1024**3

# The columns that make a shape: an interval is closed when one of them changes.
SHAPE_COLUMNS = (
    "resource_type",
    "project_id",
    "user_id",
    "flavor_id",
    "flavor_name",
    "vcpus",
    "memory_mb",
    "disk_gb",
    "state",
    "host_id",
    "size_gb",
    "volume_type_id",
    "address",
)

Shape = dict[str, Any]


def state_class(vm_state: str, host_id: str | None, desired_state: str = "active") -> str | None:
    """How a server in ``vm_state`` is billed (see the module docstring); None: not billed."""
    if vm_state == "resized":
        return "stopped" if desired_state == "stopped" else "running"
    if vm_state in RUNNING_STATES:
        return "running"
    if vm_state in HELD_STATES:
        return "stopped"
    if vm_state == "shelved_offloaded":
        return "shelved"
    if vm_state == "error" and host_id is not None:
        return "stopped"
    return None


def _shape(resource_type: str, project_id: str | None, **values: Any) -> Shape | None:
    if not project_id:
        return None
    shape: Shape = dict.fromkeys(SHAPE_COLUMNS)
    shape.update(vcpus=0, memory_mb=0, disk_gb=0, size_gb=0)
    shape.update(resource_type=resource_type, project_id=project_id, **values)
    return shape


def server_shape(i: m.Instance) -> Shape | None:
    state = None if i.deleted else state_class(i.vm_state, i.host_id, i.desired_state)
    if state is None:
        return None
    flavor = i.old_flavor or i.flavor or {}
    return _shape(
        "server",
        i.project_id,
        user_id=i.user_id,
        flavor_id=str(flavor.get("id", i.flavor_id)),
        flavor_name=str(flavor.get("name", i.flavor_id)),
        vcpus=int(flavor.get("vcpus", 0)),
        memory_mb=int(flavor.get("ram", 0)),
        disk_gb=int(flavor.get("disk", 0)) + int(flavor.get("ephemeral", 0)),
        state=state,
        host_id=i.host_id if state != "shelved" else None,
    )


def volume_shape(v: m.Volume) -> Shape | None:
    if v.deleted or v.status in ("error", "deleted"):
        return None
    return _shape(
        "volume",
        v.project_id,
        user_id=v.user_id,
        size_gb=int(v.size),
        volume_type_id=v.volume_type_id,
    )


def snapshot_shape(s: m.VolumeSnapshot) -> Shape | None:
    if s.deleted or s.status in ("error", "deleted"):
        return None
    return _shape("snapshot", s.project_id, user_id=s.user_id, size_gb=int(s.size))


def image_shape(i: m.Image) -> Shape | None:
    if i.status != "active":
        return None
    return _shape("image", i.owner, size_gb=math.ceil((i.size or 0) / GIB))


def floating_ip_shape(f: m.FloatingIP) -> Shape | None:
    return _shape("floating_ip", f.project_id, address=f.floating_ip_address)


@dataclass(frozen=True)
class Kind:
    """One billable model: how to read its shape, and which attributes can change it."""

    shape: Callable[[Any], Shape | None]
    watched: tuple[str, ...]


KINDS: dict[type[m.Base], Kind] = {
    m.Instance: Kind(
        server_shape,
        (
            "vm_state",
            "desired_state",
            "host_id",
            "flavor",
            "old_flavor",
            "flavor_id",
            "project_id",
            "user_id",
            "deleted",
        ),
    ),
    m.Volume: Kind(
        volume_shape,
        ("size", "status", "volume_type_id", "project_id", "user_id", "deleted"),
    ),
    m.VolumeSnapshot: Kind(snapshot_shape, ("size", "status", "project_id", "user_id", "deleted")),
    m.Image: Kind(image_shape, ("size", "status", "owner")),
    m.FloatingIP: Kind(floating_ip_shape, ("project_id", "floating_ip_address")),
}


def shape_of(row: UsageInterval) -> Shape:
    return {c: getattr(row, c) for c in SHAPE_COLUMNS}


def _changed(obj: Any, watched: Iterable[str]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in watched)


def _open_intervals(session: Session, ids: list[str]) -> dict[str, list[UsageInterval]]:
    found: dict[str, list[UsageInterval]] = {}
    for start in range(0, len(ids), 500):
        rows = session.scalars(
            select(UsageInterval).where(
                UsageInterval.resource_id.in_(ids[start : start + 500]),
                UsageInterval.ended_at.is_(None),
            )
        )
        for row in rows:
            found.setdefault(row.resource_id, []).append(row)
    return found


def move_to(
    session: Session,
    resource_id: str,
    shape: Shape | None,
    open_rows: list[UsageInterval],
    now: dt.datetime,
) -> None:
    """Make ``shape`` (None: not billed) the resource's one open interval from ``now``:
    intervals of another shape are closed; one of the same shape is kept open."""
    keep: UsageInterval | None = None
    for row in open_rows:
        if keep is None and shape is not None and shape_of(row) == shape:
            keep = row
        else:
            row.ended_at = max(now, row.started_at)
    if shape is not None and keep is None:
        session.add(UsageInterval(resource_id=resource_id, started_at=now, **shape))


def record(session: Session) -> None:
    """The recorder (kumo.core.recording): close and open intervals for what this flush
    changes. Reads attribute history, so each change is seen in exactly one flush."""
    wanted: dict[str, Shape | None] = {}
    for obj in session.new:
        kind = KINDS.get(type(obj))
        if kind is not None:
            wanted[obj.id] = kind.shape(obj)
    for obj in session.dirty:
        kind = KINDS.get(type(obj))
        if kind is not None and obj.id not in wanted and _changed(obj, kind.watched):
            wanted[obj.id] = kind.shape(obj)
    for obj in session.deleted:
        if type(obj) in KINDS:
            wanted[obj.id] = None
    if not wanted:
        return
    now = usage_clock.clock()
    new_ids = {obj.id for obj in session.new if type(obj) in KINDS}
    with session.no_autoflush:
        existing = _open_intervals(session, [i for i in wanted if i not in new_ids])
    for resource_id, shape in wanted.items():
        move_to(session, resource_id, shape, existing.get(resource_id, []), now)


# --- what should be open (kumo db check) -------------------------------------------------


def live_shapes(session: Session) -> dict[str, Shape]:
    """The shape every live billable resource has now, by resource id."""
    queries: list[tuple[Any, Callable[[Any], Shape | None]]] = [
        (select(m.Instance).where(m.Instance.deleted.is_(False)), server_shape),
        (select(m.Volume).where(m.Volume.deleted.is_(False)), volume_shape),
        (select(m.VolumeSnapshot).where(m.VolumeSnapshot.deleted.is_(False)), snapshot_shape),
        (select(m.Image).where(m.Image.status == "active"), image_shape),
        (select(m.FloatingIP), floating_ip_shape),
    ]
    shapes: dict[str, Shape] = {}
    for query, shape_fn in queries:
        for row in session.scalars(query):
            shape = shape_fn(row)
            if shape is not None:
                shapes[row.id] = shape
    return shapes


def all_open(session: Session) -> dict[str, list[UsageInterval]]:
    found: dict[str, list[UsageInterval]] = {}
    for row in session.scalars(select(UsageInterval).where(UsageInterval.ended_at.is_(None))):
        found.setdefault(row.resource_id, []).append(row)
    return found


def disagreements(session: Session) -> list[str]:
    """Open intervals that belong to no live resource (or to another shape), and live
    billable resources without exactly one open interval of their shape."""
    live, opened = live_shapes(session), all_open(session)
    problems: list[str] = []
    for resource_id, rows in opened.items():
        shape = live.get(resource_id)
        if shape is None:
            problems.append(
                f"{rows[0].resource_type} {resource_id} is not billable now but has "
                f"{len(rows)} open usage interval(s)"
            )
        elif len(rows) != 1 or shape_of(rows[0]) != shape:
            problems.append(
                f"{shape['resource_type']} {resource_id} has {len(rows)} open usage "
                "interval(s), not one of its current shape"
            )
    for resource_id, shape in live.items():
        if resource_id not in opened:
            problems.append(f"{shape['resource_type']} {resource_id} has no open usage interval")
    return problems


def repair(session: Session) -> None:
    """Close what should not be open and open what should, from now (the ledger cannot
    know when a change it missed happened; it stops the drift from growing)."""
    live, opened = live_shapes(session), all_open(session)
    now = usage_clock.clock()
    for resource_id in set(live) | set(opened):
        rows = opened.get(resource_id, [])
        shape = live.get(resource_id)
        if len(rows) > 1 and shape is not None:
            # Keep none: several open rows mean the truth from their start is unknown.
            for row in rows:
                row.ended_at = max(now, row.started_at)
            rows = []
        move_to(session, resource_id, shape, rows, now)

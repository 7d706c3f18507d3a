"""Volume snapshots: point-in-time copies kept by the backend of the volume's host.

Like a volume, a snapshot is a request (``creating``/``deleting`` with a generation) that
the agent of its host carries out. An attached volume is snapshotted only with ``force``,
as Cinder asks; the copy then holds what the guest had flushed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest
from kumo.core.policy import Context
from kumo.core.volume import quotas, volumes
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow


@dataclass(frozen=True)
class SnapshotCreate:
    """A snapshot to take, its fields checked by the API (kumo.api.volume.snapshot_bodies);
    core checks the volume (visible, in a state to snapshot) and the quota."""

    volume_id: str
    force: bool = False
    name: str | None = None
    description: str | None = None
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SnapshotUpdate:
    """``texts``: the name and/or description to set (None clears one); ``meta``, when not
    None, replaces the metadata."""

    texts: dict[str, str | None] = field(default_factory=dict)
    meta: dict[str, str] | None = None


def get(session: Session, ctx: Context, snapshot_id: str) -> m.VolumeSnapshot:
    """A snapshot of the caller's project (any project for an admin); otherwise 404."""
    return volumes.owned(session, ctx, m.VolumeSnapshot, snapshot_id, "Snapshot")


def set_metadata(
    session: Session, ctx: Context, snapshot_id: str, meta: Any, replace: bool
) -> dict[str, str]:
    return volumes.merge_metadata(get(session, ctx, snapshot_id), meta, replace)


@dataclass
class ListFilters:
    all_tenants: bool = False
    name: str | None = None
    status: str | None = None
    volume_id: str | None = None
    limit: int | None = None
    marker: str | None = None


def list_snapshots(session: Session, ctx: Context, f: ListFilters) -> list[m.VolumeSnapshot]:
    query = select(m.VolumeSnapshot).where(m.VolumeSnapshot.deleted.is_(False))
    if not (ctx.is_admin and f.all_tenants):
        query = query.where(m.VolumeSnapshot.project_id == ctx.project_id)
    if f.name is not None:
        query = query.where(m.VolumeSnapshot.name == f.name)
    if f.status is not None:
        query = query.where(m.VolumeSnapshot.status == f.status)
    if f.volume_id is not None:
        query = query.where(m.VolumeSnapshot.volume_id == f.volume_id)
    query = query.order_by(m.VolumeSnapshot.created_at.desc(), m.VolumeSnapshot.id.desc())
    rows = list(session.scalars(query))
    if f.marker is not None:
        ids = [s.id for s in rows]
        if f.marker not in ids:
            raise BadRequest(f"Marker {f.marker} could not be found.")
        rows = rows[ids.index(f.marker) + 1 :]
    return rows[: f.limit] if f.limit is not None else rows


def create(session: Session, ctx: Context, request: SnapshotCreate) -> m.VolumeSnapshot:
    volume = volumes.get(session, ctx, request.volume_id)
    if volume.status == "in-use" and not request.force:
        raise BadRequest(
            f"Invalid volume: Volume {volume.id} is in-use; snapshot it with force=True (the "
            "copy holds what the guest has flushed)."
        )
    if volume.status not in ("available", "in-use"):
        raise volumes.invalid_status(volume, "available or in-use", "snapshot it")
    lock_for_claims(session)
    quotas.check(session, volume.project_id, snapshots=1, gigabytes=volume.size)
    now = utcnow()
    snapshot = m.VolumeSnapshot(
        id=str(uuid.uuid4()),
        volume_id=volume.id,
        project_id=volume.project_id,
        user_id=ctx.user_id,
        name=request.name,
        description=request.description,
        size=volume.size,
        status="creating",
        meta=dict(request.meta),
        host_id=volume.host_id,
        backend=volume.backend,
        generation=1,
        observed_generation=0,
        task_deadline=now + volumes.TASK_DEADLINE,
        created_at=now,
        updated_at=now,
    )
    session.add(snapshot)
    session.flush()
    volumes.wake_agent(session, snapshot.host_id)
    return snapshot


def update(
    session: Session, ctx: Context, snapshot_id: str, change: SnapshotUpdate
) -> m.VolumeSnapshot:
    snapshot = get(session, ctx, snapshot_id)
    for key, value in change.texts.items():
        setattr(snapshot, key, value)
    if change.meta is not None:
        snapshot.meta = dict(change.meta)
    snapshot.updated_at = utcnow()
    return snapshot


def delete(session: Session, ctx: Context, snapshot_id: str) -> m.VolumeSnapshot:
    snapshot = get(session, ctx, snapshot_id)
    if snapshot.status not in ("available", "error", "error_deleting"):
        raise BadRequest(
            f"Invalid snapshot: Snapshot {snapshot.id} status must be available or error, "
            f"but current status is: {snapshot.status}."
        )
    in_use = session.scalars(
        select(m.Volume.id).where(
            m.Volume.snapshot_id == snapshot.id,
            m.Volume.deleted.is_(False),
            m.Volume.status == "creating",
        )
    ).first()
    if in_use is not None:
        raise BadRequest(f"Invalid snapshot: volume {in_use} is being created from it.")
    if snapshot.host_id is None:
        volumes.finish_snapshot_delete(snapshot)
        return snapshot
    snapshot.status = "deleting"
    snapshot.generation += 1
    snapshot.task_deadline = utcnow() + volumes.TASK_DEADLINE
    snapshot.updated_at = utcnow()
    volumes.wake_agent(session, snapshot.host_id)
    return snapshot

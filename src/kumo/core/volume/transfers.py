"""Volume transfers: give a volume to another project, as Cinder's os-volume-transfer does.

The giving project makes a transfer (the volume waits in ``awaiting-transfer``) and hands
its id and auth key to the receiver, out of band; the receiver accepts with both, within
its own quota, and the volume (with its snapshots) becomes its own. The key is shown once
and stored only as a salted hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, NotFound
from kumo.core.policy import Context
from kumo.core.volume import quotas, volumes
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow

KEY_BYTES = 8  # Cinder's default volume_transfer_key_length is 16 characters


def _hash(salt: str, key: str) -> str:
    return hashlib.sha256(f"{salt}:{key}".encode()).hexdigest()


def get(session: Session, ctx: Context, transfer_id: str) -> m.VolumeTransfer:
    """A transfer of the caller's project (admins see all)."""
    row = session.get(m.VolumeTransfer, transfer_id)
    if row is None or (row.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"Transfer {transfer_id} could not be found.")
    return row


def list_transfers(session: Session, ctx: Context, all_tenants: bool) -> list[m.VolumeTransfer]:
    query = select(m.VolumeTransfer).order_by(m.VolumeTransfer.created_at)
    if not (ctx.is_admin and all_tenants):
        query = query.where(m.VolumeTransfer.project_id == ctx.project_id)
    return list(session.scalars(query))


def create(
    session: Session, ctx: Context, volume_id: str, name: str | None
) -> tuple[m.VolumeTransfer, str]:
    """The transfer and its auth key (shown once); ``name`` as the API checked it."""
    volume = volumes.get(session, ctx, volume_id)
    if volume.status != "available":
        raise volumes.invalid_status(volume, "available", "transfer it")
    key = secrets.token_hex(KEY_BYTES)
    salt = secrets.token_hex(8)
    row = m.VolumeTransfer(
        id=str(uuid.uuid4()),
        volume_id=volume.id,
        project_id=volume.project_id,
        name=name,
        salt=salt,
        key_hash=_hash(salt, key),
        created_at=utcnow(),
    )
    session.add(row)
    volume.status = "awaiting-transfer"
    volume.updated_at = utcnow()
    session.flush()
    return row, key


def delete(session: Session, ctx: Context, transfer_id: str) -> None:
    row = get(session, ctx, transfer_id)
    volume = session.get(m.Volume, row.volume_id)
    if volume is not None and volume.status == "awaiting-transfer":
        volume.status = "available"
        volume.updated_at = utcnow()
    session.delete(row)


def accept(session: Session, ctx: Context, transfer_id: str, auth_key: str) -> m.VolumeTransfer:
    """The caller's project takes the volume: any project that knows the id and key."""
    receiver = volumes.project_of(ctx)
    lock_for_claims(session)
    row = session.get(m.VolumeTransfer, transfer_id)
    if row is None:
        raise NotFound(f"Transfer {transfer_id} could not be found.")
    if not hmac.compare_digest(row.key_hash, _hash(row.salt, auth_key)):
        raise BadRequest(
            f"Invalid auth key: Attempt to transfer {row.volume_id} with invalid auth key."
        )
    volume = session.get(m.Volume, row.volume_id)
    if volume is None or volume.deleted or volume.status != "awaiting-transfer":
        raise BadRequest(f"Invalid volume: volume {row.volume_id} is not awaiting a transfer.")
    snapshots = list(
        session.scalars(
            select(m.VolumeSnapshot).where(
                m.VolumeSnapshot.volume_id == volume.id, m.VolumeSnapshot.deleted.is_(False)
            )
        )
    )
    quotas.check(
        session,
        receiver,
        volumes=1,
        snapshots=len(snapshots),
        gigabytes=volume.size + sum(s.size for s in snapshots),
    )
    now = utcnow()
    volume.project_id = receiver
    volume.user_id = ctx.user_id
    volume.status = "available"
    volume.updated_at = now
    for snapshot in snapshots:
        snapshot.project_id = receiver
        snapshot.user_id = ctx.user_id
    session.delete(row)
    return row

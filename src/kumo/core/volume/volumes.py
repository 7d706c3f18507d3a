"""Volumes: create, show, list, update, extend, delete and the small state actions, with
Cinder's rules and messages.

A request writes the desired state (``status`` creating/deleting/extending and a new
``generation``) and returns; the agent of the volume's host makes it so and reports
(kumo.core.volume.reports). Placement happens here, at create time, under the claims lock:
the host whose backend has the most room takes it (DESIGN.md section 3.4).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from kumo.core import hosts, policy, wakeup
from kumo.core.commit_wakeups import wake_after_commit
from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.params import body_bool
from kumo.core.policy import Context
from kumo.core.volume import quotas, types
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow

TASK_DEADLINE = dt.timedelta(minutes=10)
MAX_NAME = 255
MAX_METADATA = 128
# Statuses a volume holds while its agent works on a request.
BUSY = ("creating", "deleting", "extending", "uploading", "downloading")
GIB = 1024**3


@dataclass(frozen=True)
class Placement:
    """What placing a volume needs from the configuration."""

    default_backend: str = "file"
    over_subscription_ratio: float = 20.0
    heartbeat_timeout: float = 30.0


class InvalidVolume(BadRequest):
    """Cinder's InvalidVolume: the volume is not in a state that allows the request."""


def invalid_status(volume: m.Volume, wanted: str, action: str) -> InvalidVolume:
    return InvalidVolume(
        f"Invalid volume: Volume {volume.id} status must be {wanted} to {action}, "
        f"but current status is: {volume.status}."
    )


def project_of(ctx: Context) -> str:
    """The caller's project: block storage is used with a project-scoped token."""
    if ctx.project_id is None:
        raise Forbidden("Block storage needs a project-scoped token.")
    return ctx.project_id


# --- reading ------------------------------------------------------------------------------


Owned = TypeVar("Owned", m.Volume, m.VolumeSnapshot)


def owned(session: Session, ctx: Context, model: type[Owned], row_id: str, what: str) -> Owned:
    """A live row of the caller's project (any project for an admin); otherwise 404, the
    same answer as for a row that does not exist, so other projects' ids stay unknown."""
    row = session.get(model, row_id)
    if row is None or row.deleted or (row.project_id != ctx.project_id and not ctx.is_admin):
        raise NotFound(f"{what} {row_id} could not be found.")
    return row


def get(session: Session, ctx: Context, volume_id: str) -> m.Volume:
    """A volume of the caller's project (any project for an admin); otherwise 404."""
    return owned(session, ctx, m.Volume, volume_id, "Volume")


@dataclass
class ListFilters:
    all_tenants: bool = False
    project_id: str | None = None
    name: str | None = None
    status: str | None = None
    availability_zone: str | None = None
    bootable: bool | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=list)


SORT_KEYS = {
    "id": m.Volume.id,
    "name": m.Volume.name,
    "status": m.Volume.status,
    "size": m.Volume.size,
    "created_at": m.Volume.created_at,
    "updated_at": m.Volume.updated_at,
    "availability_zone": m.Volume.availability_zone,
    "bootable": m.Volume.bootable,
    "project_id": m.Volume.project_id,
}


def list_volumes(session: Session, ctx: Context, f: ListFilters) -> list[m.Volume]:
    """The caller's volumes (all projects for an admin asking ``all_tenants``), newest
    first unless sorted otherwise, filtered and paged with ``marker``/``limit``."""
    query = select(m.Volume).where(m.Volume.deleted.is_(False))
    if not (ctx.is_admin and f.all_tenants):
        query = query.where(m.Volume.project_id == ctx.project_id)
    elif f.project_id:
        query = query.where(m.Volume.project_id == f.project_id)
    if f.name is not None:
        query = query.where(m.Volume.name == f.name)
    if f.status is not None:
        query = query.where(m.Volume.status == f.status)
    if f.availability_zone is not None:
        query = query.where(m.Volume.availability_zone == f.availability_zone)
    if f.bootable is not None:
        query = query.where(m.Volume.bootable.is_(f.bootable))
    sort = f.sort or [("created_at", "desc"), ("id", "desc")]
    if not any(key == "id" for key, _ in sort):
        sort = [*sort, ("id", sort[0][1])]
    for key, direction in sort:
        column = SORT_KEYS[key]
        query = query.order_by(column.desc() if direction == "desc" else column.asc())
    rows = list(session.scalars(query))
    if f.metadata:  # JSON columns differ per database: filtered here, on the page's rows
        rows = [v for v in rows if all((v.meta or {}).get(k) == x for k, x in f.metadata.items())]
    if f.marker is not None:
        ids = [v.id for v in rows]
        if f.marker not in ids:
            raise BadRequest(f"Marker {f.marker} could not be found.")
        rows = rows[ids.index(f.marker) + 1 :]
    if f.limit is not None:
        rows = rows[: f.limit]
    return rows


def parse_sort(value: str | None, keys: str | None, dirs: str | None) -> list[tuple[str, str]]:
    """Cinder's ``sort=key:dir,key2`` or the older ``sort_key``/``sort_dir`` pair."""
    pairs: list[tuple[str, str]] = []
    if value:
        for item in value.split(","):
            key, _, direction = item.strip().partition(":")
            pairs.append((key, direction or "desc"))
    elif keys:
        directions = (dirs or "").split(",")
        for index, key in enumerate(keys.split(",")):
            direction = (
                directions[index] if index < len(directions) and directions[index] else "desc"
            )
            pairs.append((key.strip(), direction.strip()))
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid input received: Invalid sort key {key}.")
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid input received: Invalid sort dir {direction}.")
    return pairs


# --- input --------------------------------------------------------------------------------


def size_of(value: Any, key: str = "size") -> int:
    """Cinder's volume size: a positive integer, also as a string of digits."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or value < 1 or value > 2**31 - 1:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            "It must be an integer of at least 1."
        )
    return value


def check_text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NAME:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            f"It must be a string of at most {MAX_NAME} characters."
        )
    return value


def metadata_of(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute metadata: an object expected.")
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= 255:
            raise BadRequest(
                "Invalid input for field/attribute metadata: keys are 1 to 255 characters."
            )
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(
                f"Invalid input for field/attribute metadata. Value of {key} "
                "must be a string of at most 255 characters."
            )
    if len(value) > MAX_METADATA:
        raise BadRequest(f"Invalid metadata: at most {MAX_METADATA} items are allowed.")
    return dict(value)


@dataclass(frozen=True)
class VolumeCreate:
    """A volume to create, its fields checked by the API (kumo.api.volume.volume_bodies);
    core checks the sources (visible, sizes), the type and the quota. ``size`` None takes
    the source's size (required without a snapshot or source volume)."""

    name: str | None = None
    description: str | None = None
    size: int | None = None
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_ref: str | None = None
    volume_type: str | None = None
    multiattach: bool = False
    meta: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VolumeUpdate:
    """``texts``: the name and/or description to set (None clears one); ``meta``, when not
    None, replaces the metadata."""

    texts: dict[str, str | None] = field(default_factory=dict)
    meta: dict[str, str] | None = None


# --- create -------------------------------------------------------------------------------


def create(session: Session, ctx: Context, request: VolumeCreate, placement: Placement) -> m.Volume:
    """A new volume, placed on a host, in ``creating`` for its agent (or ``error`` with the
    reason when no backend has room, as Cinder's scheduler leaves it)."""
    name, description, multiattach = request.name, request.description, request.multiattach
    lock_for_claims(session)
    snapshot = source = None
    host_id: str | None = None
    image_meta: dict[str, str] | None = None
    bootable = False
    if request.snapshot_id:
        snapshot = _snapshot_source(session, ctx, request.snapshot_id)
        size = request.size if request.size is not None else snapshot.size
        if size < snapshot.size:
            raise BadRequest(
                f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                f"snapshot size {snapshot.size}GB. They must be >= original snapshot size."
            )
        host_id = snapshot.host_id
        # Cinder: a volume made from a snapshot is bootable, with the image metadata, as
        # the volume the snapshot was taken of is.
        origin = session.get(m.Volume, snapshot.volume_id)
        if origin is not None:
            bootable = origin.bootable
            image_meta = dict(origin.image_meta) if origin.image_meta else None
    elif request.source_volid:
        source = _volume_source(session, ctx, request.source_volid)
        size = request.size if request.size is not None else source.size
        if size < source.size:
            raise BadRequest(
                f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                f"source volume size {source.size}GB. They must be >= original volume size."
            )
        host_id = source.host_id
        bootable = source.bootable
        image_meta = dict(source.image_meta) if source.image_meta else None
    else:
        size = request.size if request.size is not None else size_of(None)
    image = None
    if request.image_ref:
        image = _image_source(session, ctx, request.image_ref)
        image_gb = -(-max(int(image.virtual_size or 0), int(image.size or 0)) // GIB)
        needed = max(image_gb, int(image.min_disk or 0))
        if needed > size:
            raise BadRequest(
                f"Invalid input received: Size of specified image {needed}GB is larger than "
                f"volume size {size}GB."
            )
        bootable = True
        image_meta = image_metadata(image)
    volume_type = (
        types.get(session, ctx, request.volume_type)
        if request.volume_type
        else (
            session.get(m.VolumeType, snapshot_volume_type(session, snapshot, source))
            or types.ensure_default(session)
        )
    )
    backend = types.backend_of(volume_type, placement.default_backend)
    # Cinder's way to ask for it since Queens: a type with multiattach="<is> True".
    if str((volume_type.extra_specs or {}).get("multiattach", "")).lower() == "<is> true":
        multiattach = True
    if source is not None:
        backend = source.backend
    if snapshot is not None:
        backend = snapshot.backend
    project_id = project_of(ctx)
    quotas.check(session, project_id, volumes=1, gigabytes=size)
    now = utcnow()
    volume = m.Volume(
        id=str(uuid.uuid4()),
        name=name,
        description=description,
        project_id=project_id,
        user_id=ctx.user_id,
        size=size,
        status="creating",
        availability_zone="nova",
        volume_type_id=volume_type.id,
        backend=backend,
        bootable=bootable,
        multiattach=multiattach,
        meta=dict(request.meta),
        image_meta=image_meta,
        source_image_id=image.id if image is not None else None,
        snapshot_id=snapshot.id if snapshot is not None else None,
        source_volid=source.id if source is not None else None,
        generation=1,
        observed_generation=0,
        task_deadline=now + TASK_DEADLINE,
        created_at=now,
        updated_at=now,
    )
    session.add(volume)
    if host_id is None:
        host_id, why = choose_host(session, backend, size, placement)
        if host_id is None:
            volume.status = "error"
            volume.task_deadline = None
            volume.fault = f"No valid backend was found. {why}"
    volume.host_id = host_id
    session.flush()
    if volume.status == "creating":
        wake_agent(session, host_id)
    return volume


def snapshot_volume_type(
    session: Session, snapshot: m.VolumeSnapshot | None, source: m.Volume | None
) -> str:
    """A copy keeps the type of what it copies."""
    if source is not None:
        return source.volume_type_id or ""
    if snapshot is not None:
        parent = session.get(m.Volume, snapshot.volume_id)
        return (parent.volume_type_id or "") if parent is not None else ""
    return ""


def _snapshot_source(session: Session, ctx: Context, ref: Any) -> m.VolumeSnapshot:
    snapshot = session.get(m.VolumeSnapshot, str(ref))
    if (
        snapshot is None
        or snapshot.deleted
        or (snapshot.project_id != ctx.project_id and not ctx.is_admin)
    ):
        raise NotFound(f"Snapshot {ref} could not be found.")
    if snapshot.status != "available":
        raise BadRequest(
            "Invalid snapshot: Originating snapshot status must be one of 'available' values"
        )
    return snapshot


def _volume_source(session: Session, ctx: Context, ref: Any) -> m.Volume:
    source = get(session, ctx, str(ref))
    if source.status not in ("available", "in-use"):
        raise invalid_status(source, "available or in-use", "clone it")
    return source


def _image_source(session: Session, ctx: Context, ref: Any) -> m.Image:
    from kumo.core.images import images  # images are their own service

    try:
        image = images.get_image(session, ctx, str(ref))
    except NotFound:
        raise BadRequest("Invalid image identifier or unable to access requested image.") from None
    if image.status != "active" or image.size is None:
        raise BadRequest(f"Invalid image: Image {image.id} is not active.")
    return image


def image_metadata(image: m.Image) -> dict[str, str]:
    """What Cinder copies of an image into ``volume_image_metadata`` (so a server booted
    from the volume boots the way the image would: kernel, ramdisk, command line)."""
    meta = {str(k): str(v) for k, v in (image.properties or {}).items()}
    meta.update(
        {
            "image_id": image.id,
            "image_name": image.name or "",
            "disk_format": image.disk_format or "",
            "container_format": image.container_format or "",
            "checksum": image.checksum or "",
            "min_disk": str(image.min_disk or 0),
            "min_ram": str(image.min_ram or 0),
            "size": str(image.size or 0),
        }
    )
    return meta


def host_backends(host: m.Host) -> dict[str, dict[str, Any]]:
    backends: dict[str, dict[str, Any]] = (host.capabilities or {}).get("volume_backends") or {}
    return backends


def choose_host(
    session: Session, backend: str, size: int, placement: Placement
) -> tuple[str | None, str]:
    """The live, enabled host whose ``backend`` has the most room for ``size`` GiB (thin:
    total x ratio, minus what its volumes and snapshots already promise); or None and why."""
    promised: dict[str, int] = {}
    for model in (m.Volume, m.VolumeSnapshot):
        rows = session.execute(
            select(model.host_id, model.size).where(
                model.deleted.is_(False), model.backend == backend, model.host_id.is_not(None)
            )
        )
        for host_id, amount in rows:
            promised[str(host_id)] = promised.get(str(host_id), 0) + int(amount)
    best: tuple[float, str] | None = None
    reasons = []
    now = utcnow()
    for host in session.scalars(select(m.Host).order_by(m.Host.name)):
        offered = host_backends(host).get(backend)
        if offered is None:
            reasons.append(f"{host.name}: no {backend} backend")
            continue
        if not host.enabled or not hosts.status_of(host, placement.heartbeat_timeout, now).up:
            reasons.append(f"{host.name}: disabled or down")
            continue
        total = float(offered.get("total_gb", 0))
        room = total * placement.over_subscription_ratio - promised.get(host.id, 0)
        if room < size:
            reasons.append(f"{host.name}: {int(room)}G left on {backend}")
            continue
        if best is None or room > best[0]:
            best = (room, host.id)
    if best is None:
        return None, "; ".join(reasons) or "no host offers block storage"
    return best[1], ""


# --- changes ------------------------------------------------------------------------------


def update(session: Session, ctx: Context, volume_id: str, change: VolumeUpdate) -> m.Volume:
    volume = get(session, ctx, volume_id)
    for key, value in change.texts.items():
        setattr(volume, key, value)
    if change.meta is not None:
        volume.meta = dict(change.meta)
    volume.updated_at = utcnow()
    return volume


def wake_agent(session: Session, host_id: str | None) -> None:
    """The volume agent of ``host_id`` has work: its long-poll returns once the caller's
    transaction commits (whoever the caller: API, CLI, controller)."""
    if host_id:
        wake_after_commit(session, wakeup.volume_topic(host_id))


def ask(volume: m.Volume, status: str) -> None:
    """A request for the volume's agent: a status with a deadline and a new generation;
    its agent is woken after the commit."""
    volume.status = status
    volume.generation += 1
    volume.task_deadline = utcnow() + TASK_DEADLINE
    volume.updated_at = utcnow()
    session = object_session(volume)
    if session is not None:
        wake_agent(session, volume.host_id)


def delete(
    session: Session, ctx: Context, volume_id: str, cascade: bool = False, force: bool = False
) -> m.Volume:
    """Ask for deletion: refused while attached or with snapshots (unless ``cascade``), as
    Cinder refuses it; a volume no host holds goes at once."""
    volume = get(session, ctx, volume_id)
    if force:
        policy.enforce(ctx, "volume:force_delete")
    allowed = ("available", "error", "error_restoring", "error_extending", "error_managing")
    if not force and volume.status not in allowed:
        raise BadRequest(
            "Invalid volume: Volume status must be available or error or error_restoring or "
            "error_extending or error_managing and must not be migrating, attached, belong to "
            "a group, have snapshots, awaiting a transfer, or be disassociated from "
            "snapshots after volume transfer."
        )
    if live_attachments(session, volume.id):
        raise BadRequest(
            f"Invalid volume: Volume {volume.id} is still attached, detach volume first."
        )
    snapshots = list(
        session.scalars(
            select(m.VolumeSnapshot).where(
                m.VolumeSnapshot.volume_id == volume.id, m.VolumeSnapshot.deleted.is_(False)
            )
        )
    )
    if snapshots and not cascade:
        raise BadRequest(
            "Invalid volume: Volume has snapshots; delete them first, or delete with cascade."
        )
    for snapshot in snapshots:
        if snapshot.host_id is None:
            finish_snapshot_delete(snapshot)
        else:
            snapshot.status = "deleting"
            snapshot.generation += 1
            snapshot.task_deadline = utcnow() + TASK_DEADLINE
    if volume.host_id is None:
        finish_delete(volume)
    else:
        ask(volume, "deleting")
    return volume


def delete_with_server(volume: m.Volume) -> None:
    """A volume mapped with ``delete_on_termination`` goes with its server."""
    if volume.status != "available":
        return  # still attached elsewhere (multiattach) or busy: kept
    if volume.host_id is None:
        finish_delete(volume)
    else:
        ask(volume, "deleting")


def finish_delete(volume: m.Volume) -> None:
    now = utcnow()
    volume.status = "deleted"
    volume.deleted = True
    volume.deleted_at = now
    volume.task_deadline = None


def finish_snapshot_delete(snapshot: m.VolumeSnapshot) -> None:
    now = utcnow()
    snapshot.status = "deleted"
    snapshot.deleted = True
    snapshot.deleted_at = now
    snapshot.task_deadline = None


def live_attachments(session: Session, volume_id: str) -> list[m.VolumeAttachment]:
    return list(
        session.scalars(
            select(m.VolumeAttachment).where(
                m.VolumeAttachment.volume_id == volume_id,
                m.VolumeAttachment.deleted.is_(False),
            )
        )
    )


def extend(session: Session, ctx: Context, volume_id: str, args: Any) -> m.Volume:
    """Grow a detached volume (Cinder's os-extend); the quota takes the growth at once."""
    if not isinstance(args, dict) or "new_size" not in args:
        raise BadRequest(
            "Invalid input for field/attribute os-extend. 'new_size' is a required property"
        )
    new_size = size_of(args["new_size"], "new_size")
    volume = get(session, ctx, volume_id)
    if volume.status != "available":
        raise invalid_status(volume, "available", "extend")
    if new_size <= volume.size:
        raise BadRequest(
            f"Invalid input received: New size for extend must be greater than current size. "
            f"(current: {volume.size}, extended: {new_size})."
        )
    lock_for_claims(session)
    quotas.check(session, volume.project_id, gigabytes=new_size - volume.size)
    volume.previous_size = volume.size
    volume.size = new_size
    ask(volume, "extending")
    return volume


def set_bootable(session: Session, ctx: Context, volume_id: str, args: Any) -> m.Volume:
    if not isinstance(args, dict) or "bootable" not in args:
        raise BadRequest(
            "Invalid input for field/attribute os-set_bootable. 'bootable' is a required property"
        )
    volume = get(session, ctx, volume_id)
    volume.bootable = body_bool(args["bootable"], "bootable")
    volume.updated_at = utcnow()
    return volume


def set_readonly(session: Session, ctx: Context, volume_id: str, args: Any) -> m.Volume:
    if not isinstance(args, dict) or "readonly" not in args:
        raise BadRequest(
            "Invalid input for field/attribute os-update_readonly_flag. "
            "'readonly' is a required property"
        )
    volume = get(session, ctx, volume_id)
    if volume.status not in ("available", "in-use"):
        raise invalid_status(volume, "available or in-use", "update its read-only flag")
    volume.readonly = body_bool(args["readonly"], "readonly")
    volume.updated_at = utcnow()
    return volume


def set_status(volume: m.Volume, wanted: tuple[str, ...], to: str, action: str) -> None:
    if volume.status not in wanted:
        raise invalid_status(volume, " or ".join(wanted), action)
    volume.status = to
    volume.updated_at = utcnow()


def reset_status(session: Session, ctx: Context, volume_id: str, args: Any) -> m.Volume:
    """os-reset_status (admin): say what the volume's state is, for a recovery."""
    policy.enforce(ctx, "volume:reset_status")
    if not isinstance(args, dict) or not isinstance(args.get("status"), str):
        raise BadRequest(
            "Invalid input for field/attribute os-reset_status. 'status' is a required property"
        )
    allowed = (
        "available",
        "in-use",
        "error",
        "error_deleting",
        "creating",
        "deleting",
        "attaching",
        "detaching",
        "error_extending",
        "maintenance",
        "reserved",
    )
    status = args["status"]
    if status not in allowed:
        raise BadRequest(f"Invalid input received: Invalid status {status}.")
    volume = get(session, ctx, volume_id)
    volume.status = status
    volume.task_deadline = None
    volume.observed_generation = volume.generation
    volume.updated_at = utcnow()
    return volume


def set_metadata(
    session: Session, ctx: Context, volume_id: str, meta: Any, replace: bool
) -> dict[str, str]:
    return merge_metadata(get(session, ctx, volume_id), meta, replace)


def merge_metadata(row: m.Volume | m.VolumeSnapshot, meta: Any, replace: bool) -> dict[str, str]:
    """Set (``replace``) or update a volume's or snapshot's metadata, within the limit."""
    new = metadata_of(meta)
    merged = new if replace else {**(row.meta or {}), **new}
    if len(merged) > MAX_METADATA:
        raise BadRequest(f"Invalid metadata: at most {MAX_METADATA} items are allowed.")
    row.meta = merged
    row.updated_at = utcnow()
    return dict(merged)


def delete_metadata_item(session: Session, ctx: Context, volume_id: str, key: str) -> None:
    volume = get(session, ctx, volume_id)
    meta = dict(volume.meta or {})
    if key not in meta:
        raise NotFound(f"Volume {volume_id} has no metadata with key {key}.")
    del meta[key]
    volume.meta = meta
    volume.updated_at = utcnow()

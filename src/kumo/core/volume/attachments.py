"""Attaching volumes to servers: Nova's os-volume_attachments (the compute agent hot-plugs
the disk) and Cinder's legacy attach actions (bookkeeping for whoever attaches, as in
Cinder), over one attachment row per volume and server.

States: an attachment is ``attaching`` until the server's agent has plugged the disk, then
``attached``; ``detaching`` until it has unplugged it, then the row is soft-deleted. The
volume's own status follows (attaching, in-use, detaching, available). Each request bumps
the server's generation so its agent picks it up; the agent reports per attachment
(kumo.core.volume.reports.record_attachment).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.policy import Context
from kumo.core.volume import volumes
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.protocol import virtio_disk_name

# Backends whose data any host can reach (the fake one has none).
SHARED_BACKENDS = ("fake",)


def of_server(session: Session, instance_id: str) -> list[m.VolumeAttachment]:
    return of_servers(session, [instance_id]).get(instance_id, [])


def of_servers(
    session: Session, instance_ids: list[str], reserved: bool = True
) -> dict[str, list[m.VolumeAttachment]]:
    """The attachments of many servers in one query (listings, an agent's resync), oldest
    first; ``reserved=False`` leaves out the ones only reserved (legacy os-reserve)."""
    result: dict[str, list[m.VolumeAttachment]] = {}
    if not instance_ids:
        return result
    query = select(m.VolumeAttachment).where(
        m.VolumeAttachment.instance_id.in_(instance_ids),
        m.VolumeAttachment.deleted.is_(False),
    )
    if not reserved:
        query = query.where(m.VolumeAttachment.status != "reserved")
    order = (m.VolumeAttachment.created_at, m.VolumeAttachment.id)
    for row in session.scalars(query.order_by(*order)):
        result.setdefault(str(row.instance_id), []).append(row)
    return result


def attached_to(session: Session, instance_ids: list[str]) -> dict[str, list[m.VolumeAttachment]]:
    """The volumes of many servers at once (server listings show them)."""
    return of_servers(session, instance_ids, reserved=False)


def find(session: Session, instance_id: str, volume_id: str) -> m.VolumeAttachment:
    for row in of_server(session, instance_id):
        if row.volume_id == volume_id:
            return row
    raise NotFound(f"Volume {volume_id} is not attached to server {instance_id}.")


MAX_DISKS = 16  # extra disks a guest can have (the hypervisor's EXTRA_DISK_SLOTS)


def _next_device(session: Session, instance: m.Instance, wanted: Any) -> str:
    """The name the guest's kernel gives the next disk: virtio-blk takes the lowest index
    no disk of the guest holds (at hot-plug), and names disks in PCI order at boot, where
    the root disk (vda) and the config drive (vdb, when the server has one) come first and
    the volumes follow in the order of their names (the host keeps their PCI slots in that
    order). A requested name is checked and then ignored, as Nova's libvirt driver does:
    the guest would not honour it."""
    if wanted is not None and (not isinstance(wanted, str) or not wanted.startswith("/dev/")):
        raise BadRequest(f"The supplied device path ({wanted}) is invalid.")
    used = {a.mountpoint for a in of_server(session, instance.id) if a.plugged}
    first = 2 if instance.config_drive else 1
    for index in range(first, first + MAX_DISKS):
        device = "/dev/" + virtio_disk_name(index)
        if device not in used:
            return device
    raise Conflict(f"Server {instance.id} has no free disk device name left.")


def _reachable(session: Session, volume: m.Volume, instance: m.Instance) -> None:
    """The file and raw backends keep a volume on its host's disk: only servers on that
    host can use it (a shelved server, on no host, must return to it)."""
    if volume.backend in SHARED_BACKENDS:
        return
    where = instance.host_id or local_volume_host(session, instance)
    if where is not None and volume.host_id != where:
        raise BadRequest(
            f"Invalid volume: volume {volume.id} is stored on another host than server "
            f"{instance.id}, and its {volume.backend} backend is local to its host. Create "
            "the volume after the server, or migrate the server to the volume's host."
        )


def check_movable(session: Session, instance: m.Instance) -> None:
    """A server whose volumes live on its host's disk cannot move to another host (the
    file and raw backends are local): detach them first."""
    for row in of_server(session, instance.id):
        volume = session.get(m.Volume, row.volume_id)
        if row.plugged and volume is not None and volume.backend not in SHARED_BACKENDS:
            raise BadRequest(
                f"Server {instance.id} has volume {volume.id} attached, which its host keeps "
                f"on local {volume.backend} storage; detach it before moving the server."
            )


def local_volume_host(session: Session, instance: m.Instance) -> str | None:
    """The host whose local backend holds a volume plugged into the server, if any."""
    for row in of_server(session, instance.id):
        volume = session.get(m.Volume, row.volume_id)
        if row.plugged and volume is not None and volume.backend not in SHARED_BACKENDS:
            return volume.host_id
    return None


def check_attachable(session: Session, volume: m.Volume) -> None:
    """Cinder's reserve rule: available, or in-use when the volume is multiattach."""
    if volume.status == "available":
        return
    if volume.status == "in-use" and volume.multiattach:
        return
    if volume.status in ("in-use", "attaching") and not volume.multiattach:
        raise BadRequest(
            f"Invalid volume: volume {volume.id} is already attached and is not multiattach "
            f"(status {volume.status})."
        )
    raise volumes.invalid_status(volume, "available", "reserve")


def attach(
    session: Session,
    ctx: Context,
    instance: m.Instance,
    volume_ref: str,
    device: Any = None,
    tag: Any = None,
    delete_on_termination: bool = False,
) -> m.VolumeAttachment:
    """Nova's attach: the server's agent hot-plugs the volume (a shut-off server gets it at
    its next start); a server with no host (shelved) just records it."""
    try:
        volume = volumes.get(session, ctx, volume_ref)
    except NotFound:
        raise NotFound(f"Volume {volume_ref} could not be found.") from None
    if volume.multiattach:
        # Nova attaches multiattach volumes from 2.60 on; this cloud serves up to 2.25.
        raise BadRequest(
            "Multiattach volumes are only supported starting with compute API version 2.60."
        )
    if any(a.volume_id == volume.id for a in of_server(session, instance.id)):
        raise BadRequest(f"Invalid volume: volume {volume.id} is already attached to this server.")
    check_attachable(session, volume)
    _reachable(session, volume, instance)
    now = utcnow()
    row = m.VolumeAttachment(
        id=str(uuid.uuid4()),
        volume_id=volume.id,
        instance_id=instance.id,
        status="attaching",
        mountpoint=_next_device(session, instance, device),
        mode="ro" if volume.readonly else "rw",
        plugged=True,
        delete_on_termination=delete_on_termination,
        tag=tag if isinstance(tag, str) else None,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    if instance.host_id is None:
        attached(volume, row)
    else:
        volume.status = "attaching"
        volume.updated_at = now
        _wake(instance)
    session.flush()
    return row


def map_on_create(
    session: Session,
    instance: m.Instance,
    volume: m.Volume,
    boot_index: int | None,
    device: str | None,
    delete_on_termination: bool,
) -> m.VolumeAttachment:
    """A volume a new server is created with (block device mapping): attached when its
    agent has spawned the guest with it."""
    now = utcnow()
    row = m.VolumeAttachment(
        id=str(uuid.uuid4()),
        volume_id=volume.id,
        instance_id=instance.id,
        status="attaching",
        mountpoint="/dev/vda" if boot_index == 0 else _next_device(session, instance, device),
        mode="ro" if volume.readonly else "rw",
        plugged=True,
        boot_index=boot_index,
        delete_on_termination=delete_on_termination,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    if volume.status != "creating":  # a new volume is made first, then attached
        volume.status = "attaching"
        volume.updated_at = now
    return row


def _wake(instance: m.Instance) -> None:
    """The server's agent has attachment work: a new generation is what it looks for."""
    instance.generation += 1


def attached(volume: m.Volume, row: m.VolumeAttachment) -> None:
    row.status = "attached"
    row.attached_at = row.updated_at = utcnow()
    row.fault = None
    volume.status = "in-use"
    volume.updated_at = utcnow()


def detach(session: Session, instance: m.Instance, volume_id: str) -> m.VolumeAttachment:
    """Nova's detach: the agent unplugs it (the guest must let go), then it is available."""
    row = find(session, instance.id, volume_id)
    volume = session.get(m.Volume, row.volume_id)
    if row.status != "attached" or volume is None:
        raise BadRequest(
            f"Invalid volume: volume {volume_id} is {row.status}, not attached; wait for it."
        )
    if row.boot_index == 0:
        raise BadRequest("Can't detach root device volume")
    if instance.host_id is None or not row.plugged:
        detached(session, volume, row)
        return row
    row.status = "detaching"
    row.updated_at = utcnow()
    volume.status = "detaching"
    volume.updated_at = utcnow()
    _wake(instance)
    return row


def detached(session: Session, volume: m.Volume, row: m.VolumeAttachment) -> None:
    now = utcnow()
    row.status = "detached"
    row.detached_at = row.updated_at = now
    row.deleted = True
    row.deleted_at = now
    session.flush()
    others = [a for a in volumes.live_attachments(session, volume.id) if a.id != row.id]
    volume.status = "in-use" if others else "available"
    volume.updated_at = now


def failed(session: Session, volume: m.Volume, row: m.VolumeAttachment, error: str) -> None:
    """The agent could not do it: an attach is undone (the volume is free again), a detach
    leaves the volume attached; the server's instance action says why."""
    if row.status == "attaching":
        detached(session, volume, row)
        row.fault = error[:4000]
    elif row.status == "detaching":
        row.status = "attached"
        row.fault = error[:4000]
        volume.status = "in-use"
    row.updated_at = utcnow()


def on_server_deleted(session: Session, instance: m.Instance) -> list[m.Volume]:
    """A deleted server lets go of its volumes: each is available again, and those mapped
    with ``delete_on_termination`` are returned for the caller to delete."""
    doomed = []
    for row in of_server(session, instance.id):
        volume = session.get(m.Volume, row.volume_id)
        if volume is None:
            continue
        detached(session, volume, row)
        if row.delete_on_termination:
            doomed.append(volume)
    return doomed


# --- Cinder's legacy actions (no hypervisor involved: the caller does that part) ---------


def legacy_attach(session: Session, ctx: Context, volume_id: str, args: Any) -> m.Volume:
    """os-attach: record that ``instance_uuid`` (or ``host_name``) uses the volume."""
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute os-attach: an object expected.")
    volume = volumes.get(session, ctx, volume_id)
    instance_uuid, host_name = args.get("instance_uuid"), args.get("host_name")
    if not instance_uuid and not host_name:
        raise BadRequest("Invalid request to attach volume to an invalid target")
    mountpoint = args.get("mountpoint")
    if not isinstance(mountpoint, str) or not mountpoint:
        raise BadRequest("Must specify 'mountpoint'")
    mode = args.get("mode", "rw")
    if mode not in ("rw", "ro"):
        raise BadRequest(
            "Invalid request to attach volume with an invalid mode. Attaching "
            "mode should be 'rw' or 'ro'"
        )
    if volume.readonly and mode == "rw":
        raise BadRequest(f"Invalid volume: Volume {volume.id} is read-only; attach it 'ro'.")
    if volume.status != "attaching":  # not reserved first: the same rule as a reserve
        check_attachable(session, volume)
    reserved = [
        a for a in volumes.live_attachments(session, volume.id)
        if a.status == "reserved" and a.instance_id in (None, instance_uuid)
    ]  # fmt: skip
    now = utcnow()
    row = (
        reserved[0]
        if reserved
        else m.VolumeAttachment(id=str(uuid.uuid4()), volume_id=volume.id, created_at=now)
    )
    row.instance_id = instance_uuid if isinstance(instance_uuid, str) else None
    row.host_name = host_name if isinstance(host_name, str) else None
    row.mountpoint = mountpoint
    row.mode = mode
    row.plugged = False
    if not reserved:
        session.add(row)
    attached(volume, row)
    return volume


def legacy_detach(session: Session, ctx: Context, volume_id: str, args: Any) -> m.Volume:
    """os-detach: the attachment named (or the only one) ends."""
    volume = volumes.get(session, ctx, volume_id)
    rows = volumes.live_attachments(session, volume.id)
    wanted = args.get("attachment_id") if isinstance(args, dict) else None
    if wanted:
        rows = [a for a in rows if a.id == wanted]
        if not rows:
            raise NotFound(f"Volume attachment {wanted} could not be found.")
    if not rows:
        raise volumes.invalid_status(volume, "in-use", "detach")
    if len(rows) > 1:
        raise BadRequest(
            "Invalid volume: the volume has several attachments; name one with attachment_id."
        )
    if rows[0].plugged and rows[0].instance_id:
        raise BadRequest(
            f"Invalid volume: volume {volume.id} is plugged into server {rows[0].instance_id}; "
            "detach it through the compute API (openstack server remove volume)."
        )
    detached(session, volume, rows[0])
    return volume


def reserve(session: Session, ctx: Context, volume_id: str) -> m.Volume:
    volume = volumes.get(session, ctx, volume_id)
    check_attachable(session, volume)
    if volume.status == "available":
        volume.status = "attaching"
    now = utcnow()
    session.add(
        m.VolumeAttachment(
            id=str(uuid.uuid4()), volume_id=volume.id, status="reserved", created_at=now,
            updated_at=now,
        )
    )  # fmt: skip
    return volume


def unreserve(session: Session, ctx: Context, volume_id: str) -> m.Volume:
    volume = volumes.get(session, ctx, volume_id)
    reserved = [a for a in volumes.live_attachments(session, volume.id) if a.status == "reserved"]
    if volume.status != "attaching" and not reserved:
        return volume  # nothing reserved: Cinder answers 202 all the same
    for row in reserved:
        row.status = "detached"
        row.deleted = True
        row.deleted_at = utcnow()
    session.flush()
    others = volumes.live_attachments(session, volume.id)
    volume.status = "in-use" if others else "available"
    volume.updated_at = utcnow()
    return volume


def begin_detaching(session: Session, ctx: Context, volume_id: str) -> m.Volume:
    volume = volumes.get(session, ctx, volume_id)
    volumes.set_status(volume, ("in-use",), "detaching", "begin detaching")
    return volume


def roll_detaching(session: Session, ctx: Context, volume_id: str) -> m.Volume:
    volume = volumes.get(session, ctx, volume_id)
    if volume.status == "detaching":
        volume.status = "in-use"
        volume.updated_at = utcnow()
    return volume

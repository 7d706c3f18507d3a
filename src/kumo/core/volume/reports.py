"""What a host agent sees and says about the volumes and snapshots its backends keep, and
about the disks it plugs into its servers.

Level-triggered like servers (kumo.core.compute.reports): the agent gets every volume and
snapshot of its host with a status and a generation, makes its backend match, and reports
the outcome for the generation it acted on; a report about an older generation changes
nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from kumo.core.compute.instance_actions import end_action
from kumo.core.errors import BadRequest, NotFound
from kumo.core.volume import attachments, uploads, volumes
from kumo.db import models as m
from kumo.db.types import utcnow

OUTCOMES = ("done", "gone", "error")


def work_for_host(session: Session, host_id: str, pending_only: bool = False) -> dict[str, Any]:
    """The host's volumes and snapshots; ``pending_only``: those with a request outstanding."""
    volume_query = select(m.Volume).where(m.Volume.host_id == host_id, m.Volume.deleted.is_(False))
    snapshot_query = select(m.VolumeSnapshot).where(
        m.VolumeSnapshot.host_id == host_id, m.VolumeSnapshot.deleted.is_(False)
    )
    if pending_only:
        volume_query = volume_query.where(m.Volume.generation > m.Volume.observed_generation)
        snapshot_query = snapshot_query.where(
            m.VolumeSnapshot.generation > m.VolumeSnapshot.observed_generation
        )
    return {
        "volumes": [
            volume_item(v) for v in session.scalars(volume_query.order_by(m.Volume.created_at))
        ],
        "snapshots": [
            snapshot_item(s)
            for s in session.scalars(snapshot_query.order_by(m.VolumeSnapshot.created_at))
        ],
    }


def upload_format(v: m.Volume) -> str:
    """The disk format the upload asked for (the waiting image's)."""
    session = object_session(v)
    image = session.get(m.Image, v.upload_image_id) if session is not None else None
    return str(image.disk_format) if image is not None and image.disk_format else "raw"


def volume_item(v: m.Volume) -> dict[str, Any]:
    source: dict[str, Any] | None = None
    if v.source_image_id:
        source = {"kind": "image", "id": v.source_image_id}
    elif v.snapshot_id:
        source = {"kind": "snapshot", "id": v.snapshot_id}
    elif v.source_volid:
        source = {"kind": "volume", "id": v.source_volid}
    upload = None
    if v.upload_image_id:
        upload = {"image_id": v.upload_image_id, "disk_format": upload_format(v)}
    return {
        "id": v.id,
        "size": v.size,
        "backend": v.backend,
        "status": v.status,
        "source": source,
        "upload": upload,
        "generation": v.generation,
        "observed_generation": v.observed_generation,
    }


def snapshot_item(s: m.VolumeSnapshot) -> dict[str, Any]:
    return {
        "id": s.id,
        "volume_id": s.volume_id,
        "size": s.size,
        "backend": s.backend,
        "status": s.status,
        "generation": s.generation,
        "observed_generation": s.observed_generation,
    }


def _outcome(body: Any) -> tuple[int, str, str | None]:
    if not isinstance(body, dict):
        raise BadRequest("Expecting an outcome object.")
    generation, outcome = body.get("generation"), body.get("outcome")
    if not isinstance(generation, int) or outcome not in OUTCOMES:
        raise BadRequest(f"An outcome needs an integer generation and one of {OUTCOMES}.")
    fault = body.get("fault")
    return generation, str(outcome), str(fault)[:4000] if fault else None


def record_volume(session: Session, host_id: str, volume_id: str, body: Any) -> None:
    generation, outcome, fault = _outcome(body)
    volume = session.get(m.Volume, volume_id)
    if volume is None or volume.deleted or volume.host_id != host_id:
        raise NotFound(f"Volume {volume_id} is not on host {host_id}.")
    if generation != volume.generation or volume.observed_generation >= generation:
        return
    volume.observed_generation = generation
    volume.task_deadline = None
    volume.updated_at = utcnow()
    status = volume.status
    if status == "deleting":
        if outcome == "error":
            volume.status, volume.fault = "error_deleting", fault
        else:
            volumes.finish_delete(volume)
    elif status == "extending":
        if outcome == "error":
            volume.status, volume.fault = "error_extending", fault
            volume.size = volume.previous_size or volume.size
        else:
            volume.status = "available"
        volume.previous_size = None
    elif status == "uploading":
        uploads.finished(session, volume)
        volume.fault = fault
    elif status in ("creating", "downloading"):
        volume.status, volume.fault = (
            ("error", fault) if outcome == "error" else ("available", None)
        )


def record_snapshot(session: Session, host_id: str, snapshot_id: str, body: Any) -> None:
    generation, outcome, fault = _outcome(body)
    snapshot = session.get(m.VolumeSnapshot, snapshot_id)
    if snapshot is None or snapshot.deleted or snapshot.host_id != host_id:
        raise NotFound(f"Snapshot {snapshot_id} is not on host {host_id}.")
    if generation != snapshot.generation or snapshot.observed_generation >= generation:
        return
    snapshot.observed_generation = generation
    snapshot.task_deadline = None
    snapshot.updated_at = utcnow()
    if snapshot.status == "deleting":
        if outcome == "error":
            snapshot.status, snapshot.fault = "error_deleting", fault
        else:
            volumes.finish_snapshot_delete(snapshot)
    elif snapshot.status == "creating":
        snapshot.status = "error" if outcome == "error" else "available"
        snapshot.fault = fault if outcome == "error" else None


# --- disks plugged into servers ------------------------------------------------------------


def disks_for_server(session: Session, instance: m.Instance) -> list[dict[str, Any]]:
    """The volumes the server's agent keeps plugged in (or plugs, or unplugs), in order."""
    return disks_for_servers(session, [instance.id]).get(instance.id, [])


def disks_for_servers(session: Session, instance_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """disks_for_server for many servers in two queries (an agent's full resync)."""
    rows = attachments.of_servers(session, instance_ids)
    wanted = {row.volume_id for found in rows.values() for row in found if row.plugged}
    volumes = (
        {v.id: v for v in session.scalars(select(m.Volume).where(m.Volume.id.in_(wanted)))}
        if wanted
        else {}
    )
    result: dict[str, list[dict[str, Any]]] = {}
    for instance_id, found in rows.items():
        for row in found:
            volume = volumes.get(row.volume_id)
            if volume is None or not row.plugged:
                continue
            result.setdefault(instance_id, []).append(_disk(row, volume))
    return result


def _disk(row: m.VolumeAttachment, volume: m.Volume) -> dict[str, Any]:
    return {
        "attachment_id": row.id,
        "volume_id": volume.id,
        "backend": volume.backend,
        "status": row.status,
        # A volume made for the server (block device mapping) may not exist yet.
        "volume_status": volume.status,
        "volume_fault": volume.fault,
        "device": row.mountpoint,
        "readonly": row.mode == "ro",
        "boot_index": row.boot_index,
        # The root volume boots the way its image did (kernel, ramdisk, cmdline).
        **({"image_meta": dict(volume.image_meta or {})} if row.boot_index == 0 else {}),
    }


def record_attachment(session: Session, host_id: str, attachment_id: str, body: Any) -> None:
    """The agent plugged (``done`` while attaching), unplugged (``done`` while detaching)
    or could not (``error``, with the reason)."""
    if not isinstance(body, dict) or body.get("outcome") not in ("done", "error"):
        raise BadRequest("An attachment outcome is 'done' or 'error'.")
    outcome, fault = body["outcome"], str(body.get("fault") or "")[:4000] or None
    row = session.get(m.VolumeAttachment, attachment_id)
    instance = session.get(m.Instance, row.instance_id or "") if row is not None else None
    if row is None or row.deleted or instance is None or instance.host_id != host_id:
        raise NotFound(f"Attachment {attachment_id} is not on host {host_id}.")
    volume = session.get(m.Volume, row.volume_id)
    if volume is None:
        raise NotFound(f"Attachment {attachment_id} has no volume.")
    if outcome == "error":
        action = "attach_volume" if row.status == "attaching" else "detach_volume"
        attachments.failed(session, volume, row, fault or "the host could not do it")
        end_action(session, instance.id, action, f"Error: {fault}")
    elif row.status == "attaching":
        attachments.attached(volume, row)
        end_action(session, instance.id, "attach_volume", None)
    elif row.status == "detaching":
        attachments.detached(session, volume, row)
        end_action(session, instance.id, "detach_volume", None)

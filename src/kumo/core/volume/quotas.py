"""Volume quotas: limits from the shared quota rows, usage counted from the rows themselves
(DESIGN.md section 3.4: never a counter that can drift). Cinder answers an exceeded quota
with 413 and names the resource."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.compute.quotas import limits as project_limits
from kumo.core.errors import TooLarge
from kumo.db import models as m

# Cinder's defaults (cinder.conf quota_*); -1 is unlimited.
DEFAULT_LIMITS = {
    "volumes": 10,
    "gigabytes": 1000,
    "snapshots": 10,
    "backups": 10,
    "backup_gigabytes": 1000,
    "per_volume_gigabytes": -1,
    "groups": 10,
}
RESOURCES = tuple(DEFAULT_LIMITS)


def limits(session: Session, project_id: str) -> dict[str, int]:
    """The project's volume limits: its rows over the default class over Cinder's defaults."""
    shared = project_limits(session, project_id)
    return {key: int(shared.get(key, default)) for key, default in DEFAULT_LIMITS.items()}


def usage(session: Session, project_id: str) -> dict[str, int]:
    """Volumes, snapshots and the gigabytes of both (Cinder counts snapshots' size too)."""
    volumes = session.execute(
        select(func.count(m.Volume.id), func.coalesce(func.sum(m.Volume.size), 0)).where(
            m.Volume.project_id == project_id, m.Volume.deleted.is_(False)
        )
    ).one()
    snapshots = session.execute(
        select(
            func.count(m.VolumeSnapshot.id), func.coalesce(func.sum(m.VolumeSnapshot.size), 0)
        ).where(m.VolumeSnapshot.project_id == project_id, m.VolumeSnapshot.deleted.is_(False))
    ).one()
    return {
        "volumes": int(volumes[0]),
        "snapshots": int(snapshots[0]),
        "gigabytes": int(volumes[1]) + int(snapshots[1]),
        "backups": 0,
        "backup_gigabytes": 0,
        "groups": 0,
        "per_volume_gigabytes": 0,
    }


def check(
    session: Session, project_id: str, volumes: int = 0, snapshots: int = 0, gigabytes: int = 0
) -> None:
    """Refuse (413) a request that would take the project over a limit; the caller holds the
    claims lock, so two racing requests cannot both pass."""
    limit = limits(session, project_id)
    used = usage(session, project_id)
    per_volume = limit["per_volume_gigabytes"]
    if volumes and per_volume >= 0 and gigabytes > per_volume:
        raise TooLarge(
            f"Requested volume size {gigabytes}G is larger than maximum allowed limit "
            f"{per_volume}G."
        )
    if gigabytes and 0 <= limit["gigabytes"] < used["gigabytes"] + gigabytes:
        raise TooLarge(
            "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
            f"gigabytes quota. Requested {gigabytes}G, quota is {limit['gigabytes']}G and "
            f"{used['gigabytes']}G has been consumed."
        )
    if volumes and 0 <= limit["volumes"] < used["volumes"] + volumes:
        raise TooLarge(
            f"VolumeLimitExceeded: Maximum number of volumes allowed ({limit['volumes']}) "
            "exceeded for quota 'volumes'."
        )
    if snapshots and 0 <= limit["snapshots"] < used["snapshots"] + snapshots:
        raise TooLarge(
            f"SnapshotLimitExceeded: Maximum number of snapshots allowed "
            f"({limit['snapshots']}) exceeded for quota 'snapshots'."
        )

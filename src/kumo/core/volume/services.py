"""Block storage services as Cinder lists them (os-services), derived from kumo's records.

Each volume backend a host's agent registered is a ``cinder-volume`` service on host
``<host>@<backend>``, as Cinder names a backend's service: up while the agent's heartbeat
is fresh, enabled while the host is (the flag the scheduler and the volume placement obey).
The active controller (the lease holder) is the ``cinder-scheduler``. Nothing else is
listed: every row stands for something that runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kumo.core import hosts
from kumo.core.compute.services import UpDown, controller_hosts
from kumo.db.types import utcnow

SCHEDULER = "cinder-scheduler"
VOLUME = "cinder-volume"
ZONE = "nova"  # the storage availability zone every volume is created in


@dataclass(frozen=True)
class VolumeService(UpDown):
    binary: str
    host: str
    enabled: bool
    up: bool
    updated_at: dt.datetime | None
    disabled_reason: str | None
    zone: str = ZONE


def _volume_services(status: hosts.HostStatus) -> list[VolumeService]:
    host = status.host
    backends = (host.capabilities or {}).get("volume_backends") or {}
    return [
        VolumeService(
            binary=VOLUME,
            host=f"{host.name}@{backend}",
            enabled=host.enabled,
            up=status.up,
            updated_at=host.last_heartbeat_at,
            disabled_reason=host.disabled_reason,
        )
        for backend in sorted(backends)
    ]


def list_services(
    session: Session, timeout: float, host: str | None = None, binary: str | None = None
) -> list[VolumeService]:
    """Cinder's list, filtered by exact ``host`` and ``binary`` as Cinder does."""
    now = utcnow()
    records = [
        VolumeService(SCHEDULER, name, True, up, None, None)
        for name, up in controller_hosts(session, now)
    ]
    for status in hosts.list_hosts(session, timeout):
        records += _volume_services(status)
    return [
        r
        for r in records
        if (host is None or r.host == host) and (binary is None or r.binary == binary)
    ]

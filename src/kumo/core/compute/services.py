"""Compute services as Nova lists them (os-services), derived from kumo's own records.

Each host is a ``nova-compute`` service: its liveness is the agent's heartbeat, its status
the host's ``enabled`` flag (the same one the scheduler filters on, so disabling a service
really stops new placements). The active controller (the lease holder) is shown as
``nova-scheduler`` and ``nova-conductor`` in the ``internal`` zone, because clients and
operators look for them there; they cannot be disabled.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core import hosts
from kumo.core.compute import aggregates
from kumo.core.compute.hypervisors import numeric_id
from kumo.core.errors import BadRequest, NotFound
from kumo.db import models as m
from kumo.db.types import utcnow

COMPUTE = "nova-compute"
CONTROLLER_BINARIES = ("nova-scheduler", "nova-conductor")
ZONE = aggregates.DEFAULT_ZONE
INTERNAL_ZONE = aggregates.INTERNAL_ZONE


class UpDown:
    """The two words OpenStack's services lists derive from a service's flags: ``status``
    (enabled/disabled, the operator's choice) and ``state`` (up/down, its heartbeat)."""

    enabled: bool
    up: bool

    @property
    def status(self) -> str:
        return "enabled" if self.enabled else "disabled"

    @property
    def state(self) -> str:
        return "up" if self.up else "down"


@dataclass(frozen=True)
class ServiceRecord(UpDown):
    id: int
    binary: str
    host: str
    zone: str
    enabled: bool
    up: bool
    updated_at: dt.datetime | None
    disabled_reason: str | None
    forced_down: bool = False


def _compute(status: hosts.HostStatus, zone: str = ZONE) -> ServiceRecord:
    """A host's nova-compute service; ``zone`` is the host's (from its aggregates)."""
    host = status.host
    return ServiceRecord(
        id=numeric_id(host.id),
        binary=COMPUTE,
        host=host.name,
        zone=zone,
        enabled=host.enabled,
        up=status.up,
        updated_at=host.last_heartbeat_at,
        disabled_reason=host.disabled_reason,
        forced_down=host.forced_down,
    )


def controller_hosts(session: Session, now: dt.datetime) -> list[tuple[str, bool]]:
    """(host, up) of each controller lease holder: the processes that schedule and
    reconcile, shown as the schedulers of the compute and block storage services."""
    return [
        (lease.holder.rsplit(":", 1)[0] or lease.holder, lease.expires_at >= now)
        for lease in session.scalars(select(m.Lease).order_by(m.Lease.name))
    ]


def _controllers(session: Session, now: dt.datetime) -> list[ServiceRecord]:
    return [
        ServiceRecord(
            id=zlib.crc32(f"{binary}@{host}".encode()) & 0x0FFFFFFF,
            binary=binary,
            host=host,
            zone=INTERNAL_ZONE,
            enabled=True,
            up=up,
            updated_at=None,
            disabled_reason=None,
        )
        for host, up in controller_hosts(session, now)
        for binary in CONTROLLER_BINARIES
    ]


def list_services(
    session: Session, timeout: float, host: str | None = None, binary: str | None = None
) -> list[ServiceRecord]:
    now = utcnow()
    zones = aggregates.host_zones(session)
    records = _controllers(session, now) + [
        _compute(s, aggregates.zone_of(zones, s.host.id))
        for s in hosts.list_hosts(session, timeout)
    ]
    return [
        r
        for r in records
        if (host is None or r.host == host) and (binary is None or r.binary == binary)
    ]


def _zone(session: Session, host: m.Host) -> str:
    return aggregates.zone_of(aggregates.host_zones(session), host.id)


def _compute_host(session: Session, host: object, binary: object) -> m.Host:
    """The host whose nova-compute service the pre-2.53 body names (host and binary)."""
    if not isinstance(host, str) or not host or not isinstance(binary, str) or not binary:
        raise BadRequest(
            "Invalid input for field/attribute host and binary: both are required strings."
        )
    row = session.scalars(select(m.Host).where(m.Host.name == host)).first()
    if row is None or binary != COMPUTE:
        raise NotFound(f"Could not find binary {binary} on host {host}.")
    return row


def set_status(
    session: Session,
    timeout: float,
    host: object,
    binary: object,
    enabled: bool,
    reason: object = None,
) -> ServiceRecord:
    """Enable or disable the nova-compute service of a host (pre-2.53 body: host, binary)."""
    if reason is not None and (not isinstance(reason, str) or not 0 < len(reason) <= 255):
        raise BadRequest(
            "Invalid input for field/attribute disabled_reason: a string of 1 to 255 "
            "characters is required."
        )
    row = _compute_host(session, host, binary)
    row.enabled = enabled
    row.disabled_reason = None if enabled else (str(reason) if reason is not None else None)
    session.flush()
    return _compute(hosts.status_of(row, timeout), _zone(session, row))


def set_forced_down(
    session: Session, timeout: float, host: object, binary: object, forced_down: bool
) -> ServiceRecord:
    """Force a host's nova-compute service down, or clear that (microversion 2.11).

    A forced-down host is down for the scheduler and in every listing until the flag is
    cleared, whatever its agent's heartbeat says: the operator knows it is fenced."""
    row = _compute_host(session, host, binary)
    row.forced_down = forced_down
    session.flush()
    return _compute(hosts.status_of(row, timeout), _zone(session, row))


def host_status(host: m.Host | None, timeout: float, now: dt.datetime | None = None) -> str:
    """A server's ``host_status`` (2.16), from its host's nova-compute service as Nova
    derives it: forced down is DOWN, disabled is MAINTENANCE, a fresh heartbeat is UP, a
    stale one UNKNOWN (the host may still run the server); no host yet is ""."""
    if host is None:
        return ""
    if host.forced_down:
        return "DOWN"
    if not host.enabled:
        return "MAINTENANCE"
    return "UP" if hosts.status_of(host, timeout, now).up else "UNKNOWN"

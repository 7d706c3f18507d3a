"""/compute/v2.1/os-availability-zone: the zones host aggregates define, plus ``nova``.

A host in no zoned aggregate is in the default zone ``nova``; a zone is available when at
least one of its compute services is enabled (Nova). The detail view (admin) also lists the
``internal`` zone of the controller's services.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.compute.common import nova_time
from kumo.api.state import AppState, app_state
from kumo.core.compute import aggregates, services
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-availability-zone")


@router.get("")
def list_zones(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        zones = aggregates.zones(session)
    return {
        "availabilityZoneInfo": [
            {"zoneName": zone, "zoneState": {"available": available}, "hosts": None}
            for zone, available in sorted(zones.items())
        ]
    }


@router.get("/detail")
def list_zones_detail(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Admin only: each zone's hosts and their services (``available`` = alive,
    ``active`` = enabled, as Nova reports them)."""
    enforce(who.ctx, "compute:availability_zone:detail")
    with state.db.session() as session:
        zones = aggregates.zones(session)
        records = services.list_services(session, state.config.hosts.heartbeat_timeout)
    listed: dict[str, dict[str, dict[str, Any]]] = {zone: {} for zone in sorted(zones)}
    for r in records:
        listed.setdefault(r.zone, {}).setdefault(r.host, {})[r.binary] = {
            "available": r.up,
            "active": r.enabled,
            "updated_at": nova_time(r.updated_at),
        }
    return {
        "availabilityZoneInfo": [
            {
                "zoneName": zone,
                "zoneState": {"available": zones.get(zone, True)},
                "hosts": zone_hosts,
            }
            for zone, zone_hosts in listed.items()
        ]
    }

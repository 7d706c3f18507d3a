"""/compute/v2.1/os-availability-zone: kumo has one zone, ``nova``, holding every host."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.compute.common import nova_time
from kumo.api.state import AppState, app_state
from kumo.core.compute import services
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-availability-zone")


def _records(state: AppState) -> list[services.ServiceRecord]:
    with state.db.session() as session:
        return services.list_services(session, state.config.hosts.heartbeat_timeout)


def _available(records: list[services.ServiceRecord]) -> bool:
    """Like Nova, a zone whose every compute service is disabled is not available."""
    computes = [r for r in records if r.binary == services.COMPUTE]
    return not computes or any(r.enabled for r in computes)


@router.get("")
def list_zones(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    available = _available(_records(state))
    return {
        "availabilityZoneInfo": [
            {"zoneName": services.ZONE, "zoneState": {"available": available}, "hosts": None}
        ]
    }


@router.get("/detail")
def list_zones_detail(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Admin only: each zone's hosts and their services (``available`` = alive,
    ``active`` = enabled, as Nova reports them)."""
    enforce(who.ctx, "compute:availability_zone:detail")
    records = _records(state)
    zones: dict[str, dict[str, dict[str, Any]]] = {services.ZONE: {}}
    for r in records:
        zones.setdefault(r.zone, {}).setdefault(r.host, {})[r.binary] = {
            "available": r.up,
            "active": r.enabled,
            "updated_at": nova_time(r.updated_at),
        }
    info = []
    for zone, zone_hosts in zones.items():
        available = True if zone == services.INTERNAL_ZONE else _available(records)
        info.append({"zoneName": zone, "zoneState": {"available": available}, "hosts": zone_hosts})
    return {"availabilityZoneInfo": info}

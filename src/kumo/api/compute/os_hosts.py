"""/compute/v2.1/os-hosts (Nova removed it at 2.43; kumo's maximum is below): service hosts,
a host's resources, enable/disable; admin only, as Nova's default policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.state import AppState, app_state
from kumo.core.compute import os_hosts
from kumo.core.errors import BadRequest, NotFound
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-hosts")


@router.get("")
def list_hosts(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "compute:hosts")
    zone = request.query_params.get("zone")
    with state.db.session() as session:
        found = os_hosts.list_hosts(session, state.config.hosts.heartbeat_timeout, zone)
    return {"hosts": found}


@router.get("/{host_name}")
def show_host(
    host_name: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "compute:hosts")
    with state.db.session() as session:
        rows = os_hosts.show(
            session, state.config.scheduler, state.config.hosts.heartbeat_timeout, host_name
        )
    return {"host": rows}


@router.put("/{host_name}")
def update_host(
    host_name: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:hosts")
    status, maintenance = _parse_update(body)
    with state.db.session() as session:
        return os_hosts.update(session, host_name, status, maintenance)


SWITCH = ("enable", "disable")


def _switch(body: dict[str, Any], key: str) -> bool | None:
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, str) or value.lower() not in SWITCH:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            f"{value!r} is not one of ['enable', 'disable']"
        )
    return value.lower() == "enable"


def _parse_update(body: Any) -> tuple[bool | None, bool | None]:
    """(status, maintenance_mode) as Nova's schema takes them; the body is checked whole,
    before the host is looked up."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input for field/attribute body: an object expected.")
    unknown = set(body) - {"status", "maintenance_mode"}
    if unknown:
        raise BadRequest(
            "Additional properties are not allowed "
            f"({', '.join(repr(k) for k in sorted(unknown))} were unexpected)"
        )
    status = _switch(body, "status")
    maintenance = _switch(body, "maintenance_mode")
    if status is None and maintenance is None:
        raise BadRequest("'status' or 'maintenance_mode' is required to update a host.")
    return status, maintenance


@router.get("/{host_name}/{action}")
def power_action(
    host_name: str, action: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """startup, shutdown and reboot: 501 for a known host, as Nova with libvirt."""
    enforce(who.ctx, "compute:hosts")
    if action not in ("startup", "shutdown", "reboot"):
        raise NotFound("The resource could not be found.")
    with state.db.session() as session:
        os_hosts.power_action(session, host_name, action)
    return {}  # not reached: power_action always raises

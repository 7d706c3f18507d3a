"""/compute/v2.1/os-services: nova-compute per host (plus the controller), enable/disable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_bool, nova_time, unknown_keys
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import services
from kumo.core.errors import BadRequest, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-services")

_ACTIONS = {"enable": True, "disable": False, "disable-log-reason": False}


def view(s: services.ServiceRecord, version: APIVersion) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": s.id,
        "binary": s.binary,
        "host": s.host,
        "zone": s.zone,
        "status": s.status,
        "state": s.state,
        "updated_at": nova_time(s.updated_at),
        "disabled_reason": s.disabled_reason,
    }
    if version.at_least("2.11"):
        body["forced_down"] = s.forced_down
    return body


@router.get("")
def list_services(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:services:list")
    q = request.query_params
    with state.db.session() as session:
        rows = services.list_services(
            session, state.config.hosts.heartbeat_timeout, q.get("host"), q.get("binary")
        )
    return {"services": [view(s, version) for s in rows]}


def _check_update_body(body: Any, version: APIVersion) -> dict[str, Any]:
    """Nova's service_update schemas: host and binary required, nothing unknown; 2.11 adds
    forced_down. Checked before the action is looked up, as Nova validates first."""
    if not isinstance(body, dict):
        raise BadRequest("Invalid input: the body must be an object with host and binary.")
    allowed = {"host", "binary", "disabled_reason"}
    if version.at_least("2.11"):
        allowed.add("forced_down")
    unknown_keys(body, allowed)
    for key in ("host", "binary"):
        if key not in body:
            raise BadRequest(
                f"Invalid input for field/attribute {key}. '{key}' is a required property"
            )
    for key in ("host", "binary", "disabled_reason"):
        value = body.get(key)
        if key in body and (not isinstance(value, str) or not 0 < len(value) <= 255):
            raise BadRequest(
                f"Invalid input for field/attribute {key}. Value: {value}. "
                "A string of 1 to 255 characters is required."
            )
    if "forced_down" in body:
        body = {**body, "forced_down": body_bool(body["forced_down"], "forced_down")}
    return body


@router.put("/{action}")
def update_service(
    action: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    """Pre-2.53 style: the body names the host and binary; the action is in the path
    (enable, disable, disable-log-reason; force-down from 2.11)."""
    enforce(who.ctx, "compute:services:update")
    body = _check_update_body(body, version)
    force_down = action == "force-down" and version.at_least("2.11")
    if action not in _ACTIONS and not force_down:
        raise NotFound("Unknown action")
    timeout = state.config.hosts.heartbeat_timeout
    if force_down:
        if "forced_down" not in body:
            raise BadRequest("Missing forced_down field")
        with state.db.session() as session:
            record = services.set_forced_down(
                session, timeout, body["host"], body["binary"], body["forced_down"]
            )
        return {
            "service": {
                "host": record.host,
                "binary": record.binary,
                "forced_down": record.forced_down,
            }
        }
    reason = body.get("disabled_reason")
    if action == "disable-log-reason" and reason is None:
        raise BadRequest("Missing disabled reason field")
    with state.db.session() as session:
        record = services.set_status(
            session,
            timeout,
            body["host"],
            body["binary"],
            _ACTIONS[action],
            reason if action == "disable-log-reason" else None,
        )
    result: dict[str, Any] = {
        "host": record.host,
        "binary": record.binary,
        "status": record.status,
    }
    if action == "disable-log-reason":
        result["disabled_reason"] = record.disabled_reason
    return {"service": result}

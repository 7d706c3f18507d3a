"""/compute/v2.1/servers/{id}/os-interface: a server's network interfaces (Nova over the
network service: each interface is a port)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_member
from kumo.api.state import AppState, app_state
from kumo.core import operations
from kumo.core.compute import nics, servers
from kumo.core.compute import server_operations as ops
from kumo.core.errors import BadRequest, NotFound
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


@router.get("/servers/{server_id}/os-interface")
def list_interfaces(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        found = []
        for port_id in nics.port_ids(instance):
            port = session.get(m.Port, port_id)
            if port is not None:
                found.append(nics.interface_view(session, port))
    return {"interfaceAttachments": found}


@router.get("/servers/{server_id}/os-interface/{port_id}")
def show_interface(
    server_id: str,
    port_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        port = session.get(m.Port, port_id) if port_id in nics.port_ids(instance) else None
        if port is None:
            raise NotFound(f"Instance {server_id} has no interface with port {port_id}.")
        return {"interfaceAttachment": nics.interface_view(session, port)}


@router.post("/servers/{server_id}/os-interface")
def attach_interface(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = body_member(body, "interfaceAttachment") if body is not None else {}
    if set(data) - {"net_id", "port_id", "fixed_ips", "tag"}:
        raise BadRequest("Invalid input for field/attribute interfaceAttachment.")
    net_id, port_id = data.get("net_id"), data.get("port_id")
    if net_id and port_id:
        raise BadRequest("Must not input both network_id and port_id")
    fixed_ip = None
    fixed = data.get("fixed_ips")
    if fixed is not None:
        if (
            not net_id
            or not isinstance(fixed, list)
            or len(fixed) != 1
            or not isinstance(fixed[0], dict)
        ):
            raise BadRequest("Invalid input for field/attribute fixed_ips.")
        fixed_ip = fixed[0].get("ip_address")
    request = ops.AttachInterface(server_id, net_id, port_id, fixed_ip)
    done = operations.run(state.db, who.ctx, ops.ATTACH_INTERFACE, request, state.env)
    return {"interfaceAttachment": done.value}


@router.delete("/servers/{server_id}/os-interface/{port_id}", status_code=202)
def detach_interface(
    server_id: str,
    port_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    request = ops.DetachInterface(server_id, port_id)
    operations.run(state.db, who.ctx, ops.DETACH_INTERFACE, request, state.env)
    return Response(status_code=202)

"""/compute/v2.1/servers/{id}/os-volume_attachments: attach a volume to a server (the
server's agent hot-plugs it), list, show and detach, in Nova's shapes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_member
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core import operations
from kumo.core.compute import servers, volume_operations
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.core.volume import attachments
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


def _view(row: m.VolumeAttachment) -> dict[str, Any]:
    return {
        "id": row.volume_id,
        "serverId": row.instance_id,
        "volumeId": row.volume_id,
        "device": row.mountpoint,
    }


@router.get("/servers/{server_id}/os-volume_attachments")
def list_attachments(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        rows = attachments.of_server(session, instance.id)
        return {"volumeAttachments": [_view(r) for r in rows if r.status != "reserved"]}


@router.get("/servers/{server_id}/os-volume_attachments/{volume_id}")
def show_attachment(
    server_id: str,
    volume_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        return {"volumeAttachment": _view(attachments.find(session, instance.id, volume_id))}


@router.post("/servers/{server_id}/os-volume_attachments")
def attach_volume(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    data = body_member(body, "volumeAttachment")
    unknown = set(data) - {"volumeId", "device"}
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute volumeAttachment. Additional properties are "
            f"not allowed ({', '.join(sorted(unknown))} unexpected)"
        )
    volume_id = data.get("volumeId")
    if not isinstance(volume_id, str) or not volume_id:
        raise BadRequest("Invalid input for field/attribute volumeId.")
    request = volume_operations.Attach(
        server_id, volume_id, version.at_least("2.20"), data.get("device")
    )
    done = operations.run(state.db, who.ctx, volume_operations.ATTACH_VOLUME, request, state.env)
    view = _view(done.value)
    return {"volumeAttachment": view}


@router.delete("/servers/{server_id}/os-volume_attachments/{volume_id}", status_code=202)
def detach_volume(
    server_id: str,
    volume_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    request = volume_operations.VolumeRequest(server_id, volume_id, version.at_least("2.20"))
    operations.run(state.db, who.ctx, volume_operations.DETACH_VOLUME, request, state.env)
    return Response(status_code=202)

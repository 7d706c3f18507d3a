"""/compute/v2.1/servers/{id}/migrations: a server's live migrations in progress.

As in Nova: list and show from 2.23, force_complete from 2.22, abort (DELETE) from 2.24;
at lower versions these routes do not exist (404). Admin only by default policy."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import need_version, nova_time
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core import operations
from kumo.core.compute import migrations
from kumo.core.compute import server_operations as ops
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


def view(row: m.Migration) -> dict[str, Any]:
    return {
        "id": row.id,
        "server_uuid": row.instance_uuid,
        "source_compute": row.source_compute,
        "source_node": row.source_node,
        "dest_compute": row.dest_compute,
        "dest_node": row.dest_node,
        "dest_host": row.dest_host,
        "status": row.status,
        "memory_total_bytes": row.memory_total_bytes,
        "memory_processed_bytes": row.memory_processed_bytes,
        "memory_remaining_bytes": row.memory_remaining_bytes,
        "disk_total_bytes": row.disk_total_bytes,
        "disk_processed_bytes": row.disk_processed_bytes,
        "disk_remaining_bytes": row.disk_remaining_bytes,
        "created_at": nova_time(row.created_at),
        "updated_at": nova_time(row.updated_at),
    }


@router.get("/servers/{server_id}/migrations")
def list_server_migrations(
    server_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    need_version(version, "2.23")
    with state.db.session() as session:
        rows = migrations.list_for_server(session, who.ctx, server_id)
        return {"migrations": [view(r) for r in rows]}


@router.get("/servers/{server_id}/migrations/{migration_id}")
def show_server_migration(
    server_id: str,
    migration_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    need_version(version, "2.23")
    with state.db.session() as session:
        row = migrations.show_for_server(session, who.ctx, server_id, migration_id)
        return {"migration": view(row)}


@router.post("/servers/{server_id}/migrations/{migration_id}/action", status_code=202)
def migration_action(
    server_id: str,
    migration_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    need_version(version, "2.22")
    if not isinstance(body, dict) or set(body) != {"force_complete"} or body["force_complete"]:
        raise BadRequest(
            "Invalid input for field/attribute force_complete: the body must be "
            '{"force_complete": null}.'
        )
    request = ops.MigrationRequest(server_id, migration_id)
    operations.run(state.db, who.ctx, ops.FORCE_COMPLETE, request, state.env)
    return Response(status_code=202)


@router.delete("/servers/{server_id}/migrations/{migration_id}", status_code=202)
def abort_server_migration(
    server_id: str,
    migration_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    need_version(version, "2.24")
    request = ops.MigrationRequest(server_id, migration_id)
    operations.run(state.db, who.ctx, ops.ABORT_MIGRATION, request, state.env)
    return Response(status_code=202)

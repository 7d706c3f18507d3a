"""/compute/v2.1/os-migrations: every migration in the cloud, for operators.

Shapes: 2.1 (Nova's original fields, nothing more: tempest's schema forbids extras), 2.23
adds ``migration_type`` and, for live migrations in progress, ``links`` to the server's
migration resource."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.compute.common import links, nova_time
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import migrations
from kumo.core.microversion import APIVersion
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


def flavor_ref(flavor_id: str | None) -> int | None:
    """Nova shows its internal integer flavor ids here; kumo's flavor ids are strings, so a
    numeric one is shown as the number and any other as null (the schema allows null)."""
    return int(flavor_id) if flavor_id is not None and flavor_id.isdigit() else None


def view(state: AppState, version: APIVersion, row: m.Migration) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": row.id,
        "status": row.status,
        "instance_uuid": row.instance_uuid,
        "source_node": row.source_node,
        "source_compute": row.source_compute,
        "dest_node": row.dest_node,
        "dest_compute": row.dest_compute,
        "dest_host": row.dest_host,
        "old_instance_type_id": flavor_ref(row.old_flavor_id),
        "new_instance_type_id": flavor_ref(row.new_flavor_id),
        "created_at": nova_time(row.created_at),
        "updated_at": nova_time(row.updated_at),
    }
    if version.at_least("2.23"):
        body["migration_type"] = row.migration_type
        if row.migration_type == migrations.LIVE and row.status in migrations.IN_PROGRESS:
            body["links"] = links(state, f"servers/{row.instance_uuid}/migrations", str(row.id))
    return body


@router.get("/os-migrations")
def list_migrations(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    q = request.query_params
    filters = migrations.ListFilters(
        host=q.get("host"),
        source_compute=q.get("source_compute"),
        status=q.get("status"),
        instance_uuid=q.get("instance_uuid"),
        migration_type=q.get("migration_type"),
    )
    with state.db.session() as session:
        rows = migrations.list_all(session, who.ctx, filters)
        return {"migrations": [view(state, version, r) for r in rows]}

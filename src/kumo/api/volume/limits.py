"""/volume/v3/limits, os-quota-sets, os-availability-zone and extensions: the small
read-mostly resources clients ask for before they create anything."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body, member
from kumo.api.state import AppState, app_state
from kumo.api.volume.common import PREFIX, bool_param
from kumo.core import policy
from kumo.core.errors import BadRequest
from kumo.core.volume import quotas, volumes
from kumo.db import models as m

router = APIRouter(prefix=PREFIX)


@router.get("/limits")
def show_limits(who: Caller = Depends(caller), state: AppState = Depends(app_state)) -> Any:
    project_id = volumes.project_of(who.ctx)
    with state.db.session() as session:
        limit = quotas.limits(session, project_id)
        used = quotas.usage(session, project_id)
    return {
        "limits": {
            "rate": [],
            "absolute": {
                "maxTotalVolumes": limit["volumes"],
                "maxTotalSnapshots": limit["snapshots"],
                "maxTotalVolumeGigabytes": limit["gigabytes"],
                "maxTotalBackups": limit["backups"],
                "maxTotalBackupGigabytes": limit["backup_gigabytes"],
                "totalVolumesUsed": used["volumes"],
                "totalSnapshotsUsed": used["snapshots"],
                "totalGigabytesUsed": used["gigabytes"],
                "totalBackupsUsed": 0,
                "totalBackupGigabytesUsed": 0,
            },
        }
    }


def _quota_set(session: Any, project_id: str, usage: bool) -> dict[str, Any]:
    limit = quotas.limits(session, project_id)
    body: dict[str, Any] = {"id": project_id}
    if usage:
        used = quotas.usage(session, project_id)
        body.update(
            {k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0} for k, v in limit.items()}
        )
    else:
        body.update(limit)
    return body


@router.get("/os-quota-sets/{project_id}")
def show_quota_set(
    project_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    if project_id != who.ctx.project_id:
        policy.enforce(who.ctx, "volume:quota_sets:other_project")
    usage = bool_param(request.query_params, "usage") or False
    with state.db.session() as session:
        return {"quota_set": _quota_set(session, project_id, usage)}


@router.get("/os-quota-sets/{project_id}/defaults")
def show_quota_defaults(project_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    return {"quota_set": {"id": project_id, **quotas.DEFAULT_LIMITS}}


@router.put("/os-quota-sets/{project_id}")
def update_quota_set(
    project_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    policy.enforce(who.ctx, "volume:quota_sets:update")
    data = member(body, "quota_set")
    changes = {}
    for key, value in data.items():
        if key in ("id", "tenant_id"):
            continue
        if key not in quotas.RESOURCES:
            raise BadRequest(f"Bad key(s) in quota set: {key}")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise BadRequest(f"Quota limit {value} for {key} must be an integer.")
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"Quota limit {value} for {key} must be an integer.") from None
        if number < -1:
            raise BadRequest(f"Quota limit {value} for {key} must be -1 or greater.")
        changes[key] = number
    with state.db.session() as session:
        for key, number in changes.items():
            row = session.get(m.QuotaLimit, (project_id, key))
            if row is None:
                session.add(m.QuotaLimit(project_id=project_id, resource=key, hard_limit=number))
            else:
                row.hard_limit = number
        session.flush()
        limit = quotas.limits(session, project_id)
    return {"quota_set": limit}


@router.delete("/os-quota-sets/{project_id}")
def delete_quota_set(
    project_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    policy.enforce(who.ctx, "volume:quota_sets:update")
    with state.db.session() as session:
        for key in quotas.RESOURCES:
            row = session.get(m.QuotaLimit, (project_id, key))
            if row is not None:
                session.delete(row)
    return Response(status_code=200)


@router.get("/os-availability-zone")
def availability_zones(who: Caller = Depends(caller)) -> dict[str, Any]:
    return {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]}


@router.get("/extensions")
def extensions(who: Caller = Depends(caller)) -> dict[str, Any]:
    names = [
        ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes"),
        ("os-vol-host-attr", "VolumeHostAttribute"),
        ("os-vol-tenant-attr", "VolumeTenantAttribute"),
        ("os-vol-mig-status-attr", "VolumeMigStatusAttribute"),
        ("os-volume-actions", "VolumeActions"),
        ("os-types-manage", "TypesManage"),
        ("os-types-extra-specs", "TypesExtraSpecs"),
        ("os-volume-type-access", "VolumeTypeAccess"),
        ("os-quota-sets", "Quotas"),
        ("os-availability-zone", "AvailabilityZones"),
        ("os-admin-actions", "AdminActions"),
    ]
    return {
        "extensions": [
            {
                "alias": alias,
                "name": name,
                "description": name,
                "links": [],
                "updated": "2026-11-22T00:00:00+00:00",
            }
            for alias, name in names
        ]
    }

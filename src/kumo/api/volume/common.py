"""Helpers the block storage API modules share: links, paging parameters and the views of
volumes, snapshots and types, in Cinder v3's shapes (tempest checks them with schemas that
allow no extra keys)."""

from __future__ import annotations

import ast
import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from kumo.api.compute.common import bool_param, int_param
from kumo.api.state import AppState
from kumo.core.errors import BadRequest
from kumo.core.policy import Context
from kumo.db import models as m

__all__ = ["bool_param", "int_param"]
PREFIX = "/volume/v3"


def cinder_time(value: dt.datetime | None) -> str | None:
    """Cinder's timestamps: ISO 8601 with microseconds, no zone."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(state: AppState, project_id: str, collection: str, ident: str) -> list[dict[str, str]]:
    base = f"{state.config.public_url}/volume"
    return [
        {"rel": "self", "href": f"{base}/v3/{project_id}/{collection}/{ident}"},
        {"rel": "bookmark", "href": f"{base}/{project_id}/{collection}/{ident}"},
    ]


def next_link(
    state: AppState,
    ctx: Context,
    collection: str,
    q: QueryParams,
    rows: list[Any],
    limit: int | None,
) -> list[dict[str, str]] | None:
    """``<collection>_links`` with the next page when this one is full."""
    if limit is None or len(rows) < limit or not rows:
        return None
    params = {k: v for k, v in q.items() if k != "marker"}
    params["marker"] = rows[-1].id
    query = "&".join(f"{k}={v}" for k, v in params.items())
    href = f"{state.config.public_url}/volume/v3/{ctx.project_id}/{collection}?{query}"
    return [{"rel": "next", "href": href}]


def metadata_param(q: QueryParams) -> dict[str, str]:
    """``metadata={"k": "v"}`` as JSON, or the Python dict literal some clients send."""
    raw = q.get("metadata")
    if not raw:
        return {}
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(raw)
        except (ValueError, SyntaxError):
            continue
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
    raise BadRequest(f"Invalid input received: metadata filter {raw} is not a dictionary.")


def _host_names(session: Session, host_ids: set[str]) -> dict[str, str]:
    if not host_ids:
        return {}
    return dict(
        session.execute(select(m.Host.id, m.Host.name).where(m.Host.id.in_(host_ids))).all()
    )


def volume_views(
    session: Session, state: AppState, ctx: Context, rows: list[m.Volume]
) -> list[dict[str, Any]]:
    """Detailed views of volumes, with their attachments and type names read at once."""
    ids = [v.id for v in rows]
    attached: dict[str, list[m.VolumeAttachment]] = {}
    if ids:
        for a in session.scalars(
            select(m.VolumeAttachment)
            .where(
                m.VolumeAttachment.volume_id.in_(ids),
                m.VolumeAttachment.deleted.is_(False),
                m.VolumeAttachment.status.in_(("attached", "detaching")),
            )
            .order_by(m.VolumeAttachment.created_at)
        ):
            attached.setdefault(a.volume_id, []).append(a)
    instance_ids = {a.instance_id for rows_ in attached.values() for a in rows_ if a.instance_id}
    server_hosts: dict[str, str | None] = {}
    if instance_ids:
        server_hosts = dict(
            session.execute(
                select(m.Instance.id, m.Instance.host_id).where(m.Instance.id.in_(instance_ids))
            ).all()
        )
    names = _host_names(
        session,
        {v.host_id for v in rows if v.host_id} | {h for h in server_hosts.values() if h},
    )
    type_ids = {v.volume_type_id for v in rows if v.volume_type_id}
    type_names: dict[str, str] = {}
    if type_ids:
        query = select(m.VolumeType.id, m.VolumeType.name).where(m.VolumeType.id.in_(type_ids))
        type_names = {str(i): str(name) for i, name in session.execute(query)}
    return [
        volume_view(state, ctx, v, attached.get(v.id, []), names, server_hosts, type_names)
        for v in rows
    ]


def volume_view(
    state: AppState,
    ctx: Context,
    v: m.Volume,
    attached: list[m.VolumeAttachment],
    host_names: dict[str, str],
    server_hosts: dict[str, str | None],
    type_names: dict[str, str],
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "status": v.status,
        "size": v.size,
        "availability_zone": v.availability_zone,
        "created_at": cinder_time(v.created_at),
        "updated_at": cinder_time(v.updated_at),
        "attachments": [
            {
                "id": v.id,
                "attachment_id": a.id,
                "volume_id": v.id,
                "server_id": a.instance_id,
                "host_name": a.host_name
                or host_names.get(server_hosts.get(a.instance_id or "") or ""),
                "device": a.mountpoint,
                "attached_at": cinder_time(a.attached_at),
            }
            for a in attached
        ],
        "bootable": "true" if v.bootable else "false",
        "encrypted": False,
        "multiattach": v.multiattach,
        "volume_type": type_names.get(v.volume_type_id or ""),
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "metadata": {
            **(v.meta or {}),
            **({"readonly": str(v.readonly)} if v.readonly is not None else {}),
        },
        "links": links(state, v.project_id, "volumes", v.id),
        "user_id": v.user_id,
        "os-vol-tenant-attr:tenant_id": v.project_id,
        "replication_status": None,
        "consistencygroup_id": None,
        "migration_status": v.migration_status,
    }
    if v.image_meta:
        view["volume_image_metadata"] = dict(v.image_meta)
    if ctx.is_admin:
        host = host_names.get(v.host_id or "")
        view["os-vol-host-attr:host"] = f"{host}@{v.backend}#{v.backend}" if host else None
        view["os-vol-mig-status-attr:migstat"] = v.migration_status
        view["os-vol-mig-status-attr:name_id"] = None
    return view


def volume_view_one(session: Session, state: AppState, ctx: Context, v: m.Volume) -> dict[str, Any]:
    return volume_views(session, state, ctx, [v])[0]


def snapshot_view(ctx: Context, s: m.VolumeSnapshot) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "status": s.status,
        "size": s.size,
        "metadata": dict(s.meta or {}),
        "created_at": cinder_time(s.created_at),
        "updated_at": cinder_time(s.updated_at),
        "os-extended-snapshot-attributes:progress": "100%" if s.status == "available" else "0%",
        "os-extended-snapshot-attributes:project_id": s.project_id,
    }


def type_view(t: m.VolumeType, ctx: Context) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "qos_specs_id": None,
    }
    if ctx.is_admin:
        view["extra_specs"] = dict(t.extra_specs or {})
    return view


# What a create or update answer leaves out: Cinder's extension attributes appear on show
# and list only (tempest's create schema allows no other key).
SHOW_ONLY = (
    "os-vol-tenant-attr:tenant_id",
    "volume_image_metadata",
    "os-vol-host-attr:host",
    "os-vol-mig-status-attr:migstat",
    "os-vol-mig-status-attr:name_id",
)


def created_view(view: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in SHOW_ONLY}

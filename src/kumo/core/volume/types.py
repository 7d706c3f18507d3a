"""Volume types: named kinds of volume whose extra specs choose a backend, as in Cinder.

Cinder creates ``__DEFAULT__`` on first use and gives it to every volume created without a
type; kumo does the same. The ``volume_backend_name`` extra spec names the storage backend
an agent offers (``file``, ``raw``, ``fake``); without it the default backend is used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core import policy
from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

DEFAULT_TYPE = "__DEFAULT__"
BACKEND_SPEC = "volume_backend_name"
MAX_NAME = 255


def ensure_default(session: Session) -> m.VolumeType:
    """The default type, made on first use (a fresh cloud, or one upgraded from before
    volumes existed)."""
    row = session.scalars(select(m.VolumeType).where(m.VolumeType.name == DEFAULT_TYPE)).first()
    if row is None:
        row = m.VolumeType(
            id=str(uuid.uuid4()),
            name=DEFAULT_TYPE,
            description="Default Volume Type",
            is_public=True,
            extra_specs={},
        )
        session.add(row)
        session.flush()
    return row


def _visible(ctx: Context, row: m.VolumeType, session: Session) -> bool:
    if row.is_public or ctx.is_admin:
        return True
    access = session.get(m.VolumeTypeAccess, (row.id, ctx.project_id))
    return access is not None


def get(session: Session, ctx: Context, ref: str) -> m.VolumeType:
    """A type by id or name that the caller may use; 404 as Cinder words it."""
    row = session.get(m.VolumeType, ref)
    if row is None:
        row = session.scalars(select(m.VolumeType).where(m.VolumeType.name == ref)).first()
    if row is None and ref in ("default", DEFAULT_TYPE):
        row = ensure_default(session)
    if row is None or not _visible(ctx, row, session):
        raise NotFound(f"Volume type {ref} could not be found.")
    return row


def list_types(session: Session, ctx: Context, is_public: bool | None = None) -> list[m.VolumeType]:
    ensure_default(session)
    query = select(m.VolumeType).order_by(m.VolumeType.created_at, m.VolumeType.name)
    if not ctx.is_admin:
        shared = select(m.VolumeTypeAccess.volume_type_id).where(
            m.VolumeTypeAccess.project_id == ctx.project_id
        )
        query = query.where(or_(m.VolumeType.is_public.is_(True), m.VolumeType.id.in_(shared)))
    elif is_public is not None:
        query = query.where(m.VolumeType.is_public.is_(is_public))
    return list(session.scalars(query))


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise BadRequest("Volume type name can not be empty and must be at most 255 characters.")
    return value.strip()


def check_specs(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and 0 < len(k) <= 255 and isinstance(v, str | int | bool | float)
        for k, v in value.items()
    ):
        raise BadRequest("Invalid input for field/attribute extra_specs: key/value pairs expected.")
    return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}


@dataclass(frozen=True)
class TypeSpec:
    """A volume type to create, its fields checked by the API (kumo.api.volume.types)."""

    name: str
    is_public: bool = True
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TypeUpdate:
    """What an update changes: a field left None keeps its value, except ``description``,
    set (to ``description``, None clearing it) when ``set_description``."""

    name: str | None = None
    is_public: bool | None = None
    set_description: bool = False
    description: str | None = None


def create(session: Session, ctx: Context, spec: TypeSpec) -> m.VolumeType:
    policy.enforce(ctx, "volume:manage_types")
    if session.scalars(select(m.VolumeType).where(m.VolumeType.name == spec.name)).first():
        raise Conflict(f"Volume Type {spec.name} already exists.")
    row = m.VolumeType(
        id=str(uuid.uuid4()),
        name=spec.name,
        description=spec.description,
        is_public=spec.is_public,
        extra_specs=dict(spec.extra_specs),
    )
    session.add(row)
    session.flush()
    return row


def update(session: Session, ctx: Context, type_id: str, change: TypeUpdate) -> m.VolumeType:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    if change.name is not None:
        clash = session.scalars(
            select(m.VolumeType).where(m.VolumeType.name == change.name)
        ).first()
        if clash is not None and clash.id != row.id:
            raise Conflict(f"Volume Type {change.name} already exists.")
        row.name = change.name
    if change.set_description:
        row.description = change.description
    if change.is_public is not None:
        row.is_public = change.is_public
    row.updated_at = utcnow()
    return row


def delete(session: Session, ctx: Context, type_id: str) -> None:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    if row.name == DEFAULT_TYPE:
        raise BadRequest("The default volume type cannot be deleted.")
    in_use = session.scalars(
        select(m.Volume.id).where(m.Volume.volume_type_id == row.id, m.Volume.deleted.is_(False))
    ).first()
    if in_use is not None:
        raise BadRequest(f"Target volume type {row.id} is still in use.")
    session.delete(row)


def set_extra_specs(session: Session, ctx: Context, type_id: str, specs: Any) -> dict[str, str]:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    row.extra_specs = {**(row.extra_specs or {}), **check_specs(specs)}
    row.updated_at = utcnow()
    return dict(row.extra_specs)


def delete_extra_spec(session: Session, ctx: Context, type_id: str, key: str) -> None:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    specs = dict(row.extra_specs or {})
    if key not in specs:
        raise NotFound(f"Volume Type {type_id} has no extra specs with key {key}.")
    del specs[key]
    row.extra_specs = specs


def backend_of(row: m.VolumeType | None, default: str) -> str:
    specs = (row.extra_specs or {}) if row is not None else {}
    return str(specs.get(BACKEND_SPEC) or default)


def add_access(session: Session, ctx: Context, type_id: str, project_id: Any) -> None:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    if row.is_public:
        raise BadRequest(
            "Invalid volume type: Type access modification is not applicable to public volume type."
        )
    if not isinstance(project_id, str) or not project_id:
        raise BadRequest("Invalid input for field/attribute project.")
    if session.get(m.VolumeTypeAccess, (row.id, project_id)) is not None:
        raise Conflict(f"Volume type access for {row.id} / {project_id} already exists.")
    session.add(m.VolumeTypeAccess(volume_type_id=row.id, project_id=project_id))


def remove_access(session: Session, ctx: Context, type_id: str, project_id: Any) -> None:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    access = session.get(m.VolumeTypeAccess, (row.id, str(project_id)))
    if access is None:
        raise NotFound(f"Volume type access not found for {row.id} / {project_id}.")
    session.delete(access)


def access_list(session: Session, ctx: Context, type_id: str) -> list[str]:
    policy.enforce(ctx, "volume:manage_types")
    row = get(session, ctx, type_id)
    if row.is_public:
        raise NotFound("Access list not available for public volume types.")
    return list(
        session.scalars(
            select(m.VolumeTypeAccess.project_id).where(m.VolumeTypeAccess.volume_type_id == row.id)
        )
    )

"""Flavors, their extra specs and who may use private ones."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.db import models as m


@dataclass(frozen=True)
class FlavorSpec:
    """A flavor to create, its values checked by the API (kumo.api.compute.flavor_bodies);
    core checks only what needs the database: that its id and name are free."""

    id: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int
    ephemeral_gb: int
    swap_mb: int
    rxtx_factor: float
    is_public: bool
    description: str | None


def create(session: Session, spec: FlavorSpec) -> m.Flavor:
    flavor = m.Flavor(
        id=spec.id,
        name=spec.name,
        vcpus=spec.vcpus,
        memory_mb=spec.memory_mb,
        root_gb=spec.root_gb,
        ephemeral_gb=spec.ephemeral_gb,
        swap_mb=spec.swap_mb,
        rxtx_factor=spec.rxtx_factor,
        is_public=spec.is_public,
        description=spec.description,
        extra_specs={},
    )
    if session.get(m.Flavor, flavor.id) is not None:
        raise Conflict(f"Flavor with ID {flavor.id} already exists.")
    if session.scalars(select(m.Flavor.id).where(m.Flavor.name == spec.name)).first():
        raise Conflict(f"Flavor with name {spec.name} already exists.")
    session.add(flavor)
    session.flush()
    return flavor


def get(
    session: Session, flavor_id: str, project_id: str | None = None, is_admin: bool = True
) -> m.Flavor:
    """A flavor the caller may see: public ones, or private ones shared with the project."""
    flavor = session.get(m.Flavor, flavor_id)
    if flavor is None or not (
        is_admin
        or flavor.is_public
        or (project_id and session.get(m.FlavorAccess, (flavor_id, project_id)))
    ):
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


def list_flavors(
    session: Session, project_id: str | None, is_admin: bool, filters: dict[str, Any]
) -> list[m.Flavor]:
    query = select(m.Flavor)
    is_public = filters.get("is_public")
    if not is_admin:
        access = select(m.FlavorAccess.flavor_id).where(m.FlavorAccess.project_id == project_id)
        query = query.where(or_(m.Flavor.is_public.is_(True), m.Flavor.id.in_(access)))
    elif is_public is not None:
        query = query.where(m.Flavor.is_public.is_(is_public))
    if filters.get("min_ram") is not None:
        query = query.where(m.Flavor.memory_mb >= filters["min_ram"])
    if filters.get("min_disk") is not None:
        query = query.where(m.Flavor.root_gb >= filters["min_disk"])
    sort_key = {
        "flavorid": m.Flavor.id,
        "id": m.Flavor.id,
        "name": m.Flavor.name,
        "memory_mb": m.Flavor.memory_mb,
        "ram": m.Flavor.memory_mb,
        "vcpus": m.Flavor.vcpus,
        "root_gb": m.Flavor.root_gb,
        "disk": m.Flavor.root_gb,
        "created_at": m.Flavor.created_at,
    }.get(filters.get("sort_key") or "flavorid")
    if sort_key is None:
        raise BadRequest(f"Invalid sort_key {filters.get('sort_key')}.")
    desc = (filters.get("sort_dir") or "asc") == "desc"
    rows = list(
        session.scalars(query.order_by(sort_key.desc() if desc else sort_key.asc(), m.Flavor.id))
    )
    marker = filters.get("marker")
    if marker is not None:
        ids = [f.id for f in rows]
        if marker not in ids:
            raise BadRequest(f"marker [{marker}] not found")
        rows = rows[ids.index(marker) + 1 :]
    limit = filters.get("limit")
    return rows[:limit] if limit is not None else rows


def delete(session: Session, flavor_id: str) -> None:
    flavor = session.get(m.Flavor, flavor_id)
    if flavor is None:
        raise NotFound(f"Flavor {flavor_id} could not be found.")
    session.delete(flavor)


def set_extra_specs(session: Session, flavor: m.Flavor, specs: Any) -> dict[str, str]:
    if not isinstance(specs, dict) or not specs:
        raise BadRequest("Invalid input: extra_specs must be a non-empty object.")
    for key, value in specs.items():
        if not isinstance(key, str) or not re.match(r"^[\w.:\- ]{1,255}$", key):
            raise BadRequest(f"Invalid extra spec key {key!r}.")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadRequest(f"Invalid extra spec value for {key}.")
        if len(str(value)) > 255:
            raise BadRequest(f"Extra spec value for {key} is longer than 255 characters.")
    merged = {**(flavor.extra_specs or {}), **{k: str(v) for k, v in specs.items()}}
    flavor.extra_specs = merged
    return merged


def delete_extra_spec(flavor: m.Flavor, key: str) -> None:
    specs = dict(flavor.extra_specs or {})
    if key not in specs:
        raise NotFound(f"Flavor {flavor.id} has no extra specs with key {key}.")
    del specs[key]
    flavor.extra_specs = specs


def access_list(session: Session, flavor: m.Flavor) -> list[str]:
    if flavor.is_public:
        raise NotFound("Access list not available for public flavors.")
    return list(
        session.scalars(
            select(m.FlavorAccess.project_id)
            .where(m.FlavorAccess.flavor_id == flavor.id)
            .order_by(m.FlavorAccess.project_id)
        )
    )


def add_access(session: Session, flavor: m.Flavor, project_id: Any) -> None:
    if not isinstance(project_id, str) or not project_id:
        raise BadRequest("Invalid input: 'tenant' is required.")
    if flavor.is_public:
        raise Conflict("Can not add access to a public flavor.")
    if session.get(m.FlavorAccess, (flavor.id, project_id)) is not None:
        raise Conflict(
            f"Flavor access already exists for flavor {flavor.id} and project "
            f"{project_id} combination."
        )
    session.add(m.FlavorAccess(flavor_id=flavor.id, project_id=project_id))


def remove_access(session: Session, flavor: m.Flavor, project_id: Any) -> None:
    row = session.get(m.FlavorAccess, (flavor.id, str(project_id)))
    if row is None:
        raise NotFound(f"Flavor access not found for {flavor.id} / {project_id} combination.")
    session.delete(row)


DEFAULT_FLAVORS = (
    # id, name, vcpus, ram MiB, disk GiB: the classic m1 sizes, but m1.tiny small enough for
    # the test guest and for many guests on a laptop.
    ("1", "m1.tiny", 1, 128, 1),
    ("2", "m1.small", 1, 2048, 20),
    ("3", "m1.medium", 2, 4096, 40),
    ("4", "m1.large", 4, 8192, 80),
)


def ensure_defaults(session: Session) -> None:
    """Create the default flavors on a new cloud (bootstrap); never touch existing ones."""
    if session.scalars(select(m.Flavor.id).limit(1)).first() is not None:
        return
    for flavor_id, name, vcpus, ram, disk in DEFAULT_FLAVORS:
        session.add(
            m.Flavor(
                id=flavor_id, name=name, vcpus=vcpus, memory_mb=ram, root_gb=disk, extra_specs={}
            )
        )

"""Flavors, their extra specs and who may use private ones."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.params import body_bool
from kumo.db import models as m

# Nova's rule for flavor names and ids: printable, no leading/trailing whitespace.
_ID_PATTERN = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_INT_LIMIT = 2**31 - 1


def _int(body: dict[str, Any], key: str, minimum: int, default: int | None = None) -> int:
    value = body.get(key, default)
    if value is None:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: None. "
            "None is not of type 'integer', 'string'"
        )
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}.")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            f"'{value}' is not a valid integer"
        ) from None
    if not minimum <= number <= _INT_LIMIT:
        raise BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value}. "
            f"{value} must be between {minimum} and {_INT_LIMIT}"
        )
    return number


def create(session: Session, body: dict[str, Any]) -> m.Flavor:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest(
            "Invalid input for field/attribute name: a name of 1 to 255 characters is required."
        )
    name = name.strip()
    flavor_id = body.get("id")
    if flavor_id in (None, "", "auto"):
        flavor_id = str(uuid.uuid4())
    elif (
        not isinstance(flavor_id, str | int)
        or isinstance(flavor_id, bool)
        or not _ID_PATTERN.match(str(flavor_id))
        or len(str(flavor_id)) > 255
    ):
        raise BadRequest(f"Invalid input for field/attribute id. Value: {flavor_id}.")
    rxtx = body.get("rxtx_factor", 1.0)
    try:
        rxtx = float(rxtx)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute rxtx_factor. Value: {rxtx}.") from None
    if not 0 < rxtx <= 3.4e38:
        raise BadRequest("rxtx_factor must be a positive number.")
    is_public = body_bool(
        body.get("os-flavor-access:is_public", True), "os-flavor-access:is_public"
    )
    description = body.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 65535):
        raise BadRequest("Invalid input for field/attribute description.")
    flavor = m.Flavor(
        id=str(flavor_id),
        name=name,
        vcpus=_int(body, "vcpus", 1),
        memory_mb=_int(body, "ram", 1),
        root_gb=_int(body, "disk", 0),
        ephemeral_gb=_int(body, "OS-FLV-EXT-DATA:ephemeral", 0, 0),
        swap_mb=_int(body, "swap", 0, 0) if body.get("swap") != "" else 0,
        rxtx_factor=rxtx,
        is_public=is_public,
        description=description,
        extra_specs={},
    )
    if session.get(m.Flavor, flavor.id) is not None:
        raise Conflict(f"Flavor with ID {flavor.id} already exists.")
    if session.scalars(select(m.Flavor.id).where(m.Flavor.name == name)).first():
        raise Conflict(f"Flavor with name {name} already exists.")
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

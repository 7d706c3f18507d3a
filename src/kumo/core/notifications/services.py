"""The legacy notifications of Neutron, Cinder, Glance and Keystone, from the rows a flush
writes: what Ceilometer's and CloudKitty's notification meters of those services read.

Each service publishes on its own exchange (``neutron``, ``cinder``, ``glance``,
``keystone``) with the legacy topic (``notifications.info``), as those services do with
oslo.messaging's default control exchange. What is told, and when:

- Neutron: ``network|subnet|port|router|floatingip.create.end`` when the row is inserted
  (payload ``{"<resource>": {...}}``) and ``.delete.end`` when it is deleted (payload
  ``{"<resource>_id": id}``, as Neutron's);
- Cinder: ``volume.create.end`` when a volume first becomes available, and
  ``volume.delete.end`` when it is deleted (Cinder's ``_usage_from_volume`` fields);
- Glance: ``image.create`` when an image is registered, ``image.delete`` when deleted;
- Keystone: ``identity.project.created`` and ``identity.project.deleted`` (its "basic"
  format: ``{"resource_info": project_id}``).

The resource dictionaries carry the row's columns with Neutron's ``tenant_id`` beside
``project_id``; they are not the API's views (those belong to the API layer), but their
names are the API's, and the ids, names and owners consumers key on are all there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from kumo.core.notifications import Settings, envelope
from kumo.db import models as m

# Neutron resources: model -> (resource name in event types and payloads)
NEUTRON = {
    m.Network: "network",
    m.Subnet: "subnet",
    m.Port: "port",
    m.Router: "router",
    m.FloatingIP: "floatingip",
}


def _json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def columns(row: Any) -> dict[str, Any]:
    """The row's column values, JSON-ready, with ``tenant_id`` as OpenStack names it."""
    values = {attr.key: _json(getattr(row, attr.key)) for attr in inspect(row).mapper.column_attrs}
    if "project_id" in values:
        values["tenant_id"] = values["project_id"]
    return values


def record(session: Session, settings: Settings, publisher_host: str) -> list[dict[str, Any]]:
    """The other services' notifications for what this flush writes (outbox rows, as
    :func:`kumo.core.notifications.envelope.row` makes them)."""
    rows: list[dict[str, Any]] = []

    def add(exchange: str, service: str, event_type: str, resource_id: str, payload: Any) -> None:
        rows.append(
            envelope.row(
                exchange=exchange,
                topic=settings.topic,
                priority="info",
                event_type=event_type,
                publisher_id=f"{service}.{publisher_host}",
                payload=payload,
                resource_id=resource_id,
                origin=envelope.Origin(),
            )
        )

    for obj in _ordered(session.new):
        name = NEUTRON.get(type(obj))
        if name is not None:
            add("neutron", "network", f"{name}.create.end", obj.id, {name: columns(obj)})
        elif isinstance(obj, m.Image):
            add("glance", "image", "image.create", obj.id, _image(obj))
        elif isinstance(obj, m.Project):
            add("keystone", "identity", "identity.project.created", obj.id, _project(obj))
    for obj in _ordered(session.deleted):
        name = NEUTRON.get(type(obj))
        if name is not None:
            add("neutron", "network", f"{name}.delete.end", obj.id, {f"{name}_id": obj.id})
        elif isinstance(obj, m.Project):
            add("keystone", "identity", "identity.project.deleted", obj.id, _project(obj))
    for obj in _ordered(session.dirty):
        if isinstance(obj, m.Volume):
            if _changed_to(obj, "status", "available", was="creating"):
                add("cinder", "volume", "volume.create.end", obj.id, _volume(obj))
            if _changed_to(obj, "deleted", True):
                add("cinder", "volume", "volume.delete.end", obj.id, _volume(obj))
        elif isinstance(obj, m.Image) and _changed_to(obj, "status", "deleted"):
            add("glance", "image", "image.delete", obj.id, _image(obj))
    return rows


def _ordered(objects: Any) -> list[Any]:
    """In the order they were added to the session: a resource's messages keep it."""
    key: Callable[[Any], int] = lambda obj: inspect(obj).insert_order or 0  # noqa: E731
    return sorted(objects, key=key)


def _changed_to(obj: Any, attribute: str, value: Any, was: Any = None) -> bool:
    history = getattr(inspect(obj).attrs, attribute).history
    added, deleted = list(history.added or ()), list(history.deleted or ())
    if value not in added or value in deleted:
        return False
    return was is None or was in deleted


def _volume(volume: m.Volume) -> dict[str, Any]:
    """Cinder's ``_usage_from_volume`` fields."""
    return {
        "tenant_id": volume.project_id,
        "host": volume.host_id,
        "user_id": volume.user_id,
        "availability_zone": volume.availability_zone,
        "volume_id": volume.id,
        "volume_type": volume.volume_type_id,
        "display_name": volume.name,
        "display_description": volume.description,
        "created_at": _json(volume.created_at),
        "launched_at": _json(volume.created_at),
        "size": volume.size,
        "status": volume.status,
        "snapshot_id": None,
        "metadata": [{"key": k, "value": v} for k, v in (volume.meta or {}).items()],
        "replication_status": None,
        "replication_extended_status": None,
        "replication_driver_data": None,
    }


def _image(image: m.Image) -> dict[str, Any]:
    values = columns(image)
    values["deleted"] = image.status == "deleted"
    return values


def _project(project: m.Project) -> dict[str, Any]:
    return {"resource_info": project.id}

"""Host aggregates (Nova's os-aggregates) and the availability zones they define.

An aggregate is a named set of hosts with metadata. One with an ``availability_zone`` puts its
hosts in that zone; a host in no zoned aggregate is in the default zone ``nova``. A host is in
one zone only, so it may join several aggregates only if their zones agree (Nova's rule).

Every change takes the host-claims lock: the scheduler reads the host -> zone map under the
same lock, so a placement never sees a zone half-changed, and two racing changes cannot put a
host into two zones.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow

DEFAULT_ZONE = "nova"
INTERNAL_ZONE = "internal"
AZ_KEY = "availability_zone"


@dataclass(frozen=True)
class AggregateView:
    """An aggregate with its hosts (by name) and metadata, as the API shows it."""

    row: m.Aggregate
    hosts: list[str]
    metadata: dict[str, str]


# -- reading ------------------------------------------------------------------------------


def get(session: Session, aggregate_id: str | int) -> m.Aggregate:
    """A live aggregate by Nova's integer id: not an integer is 400, unknown 404 (Nova)."""
    try:
        ident = int(str(aggregate_id))
    except ValueError:
        raise BadRequest("Invalid input received: id must be an integer") from None
    row = session.get(m.Aggregate, ident) if -(2**31) <= ident < 2**31 else None
    if row is None or row.deleted:
        raise NotFound(f"Aggregate {aggregate_id} could not be found.")
    return row


def list_aggregates(session: Session) -> list[m.Aggregate]:
    return list(
        session.scalars(
            select(m.Aggregate).where(m.Aggregate.deleted == 0).order_by(m.Aggregate.id)
        )
    )


def views(session: Session, rows: list[m.Aggregate]) -> list[AggregateView]:
    """Hosts and metadata of many aggregates in two queries (a listing stays cheap)."""
    ids = [r.id for r in rows]
    hosts: dict[int, list[str]] = defaultdict(list)
    metadata: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        for agg_id, name in session.execute(
            select(m.AggregateHost.aggregate_id, m.Host.name)
            .join(m.Host, m.Host.id == m.AggregateHost.host_id)
            .where(m.AggregateHost.aggregate_id.in_(ids))
            .order_by(m.Host.name)
        ):
            hosts[agg_id].append(name)
        for meta in session.scalars(
            select(m.AggregateMetadata).where(m.AggregateMetadata.aggregate_id.in_(ids))
        ):
            metadata[meta.aggregate_id][meta.key] = meta.value
    result = []
    for r in rows:
        shown = dict(metadata[r.id])
        if r.availability_zone is not None:
            shown[AZ_KEY] = r.availability_zone
        result.append(AggregateView(r, hosts[r.id], shown))
    return result


def host_zones(session: Session) -> dict[str, str]:
    """Host id -> zone, for the hosts in a zoned aggregate (the others are in ``nova``).

    One query: the scheduler calls it once per batch of placements."""
    zones: dict[str, str] = {}
    for host_id, zone in session.execute(
        select(m.AggregateHost.host_id, m.Aggregate.availability_zone)
        .join(m.Aggregate, m.Aggregate.id == m.AggregateHost.aggregate_id)
        .where(m.Aggregate.deleted == 0, m.Aggregate.availability_zone.is_not(None))
        .order_by(m.Aggregate.id)
    ):
        if zone is not None:
            zones.setdefault(host_id, zone)
    return zones


def zone_of(zones: dict[str, str], host_id: str | None) -> str:
    """The zone of a host, from a :func:`host_zones` map."""
    return zones.get(host_id or "", DEFAULT_ZONE)


def zones(session: Session) -> dict[str, bool]:
    """Every zone that has hosts, and whether it is available (Nova: at least one of its
    compute services is enabled). With no host at all the default zone is still listed (and
    available) so a new cloud shows where its servers will go."""
    host_zone = host_zones(session)
    result: dict[str, bool] = {}
    for host_id, enabled in session.execute(select(m.Host.id, m.Host.enabled)):
        zone = zone_of(host_zone, host_id)
        result[zone] = result.get(zone, False) or bool(enabled)
    if not result:
        result[DEFAULT_ZONE] = True
    return result


# -- validation ---------------------------------------------------------------------------


def check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or value.strip() != value:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            "A string of 1 to 255 characters without leading or trailing spaces is required."
        )
    return value


def zone_name(value: Any, field: str = AZ_KEY) -> str:
    """Nova's az_name: 1-255 characters and no ``:`` (which would read as ``az:host``)."""
    name = check_name(value, field)
    if ":" in name:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            f"'{value}' does not match '^[^:]*$'"
        )
    return name


def _flush_unique(session: Session, name: str) -> None:
    """Flush; a live aggregate of the same name (a racing create too) is 409, as Nova."""
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"Aggregate {name} already exists.") from None


def _name_taken(session: Session, name: str, but: int | None = None) -> bool:
    query = select(m.Aggregate.id).where(m.Aggregate.name == name, m.Aggregate.deleted == 0)
    if but is not None:
        query = query.where(m.Aggregate.id != but)
    return session.scalars(query).first() is not None


def _host_ids(session: Session, aggregate_id: int) -> list[str]:
    return list(
        session.scalars(
            select(m.AggregateHost.host_id).where(m.AggregateHost.aggregate_id == aggregate_id)
        )
    )


def _other_zones(session: Session, host_ids: list[str], aggregate_id: int) -> set[str]:
    """The zones these hosts have through aggregates other than ``aggregate_id``."""
    if not host_ids:
        return set()
    return {
        zone
        for zone in session.scalars(
            select(m.Aggregate.availability_zone)
            .join(m.AggregateHost, m.AggregateHost.aggregate_id == m.Aggregate.id)
            .where(
                m.AggregateHost.host_id.in_(host_ids),
                m.Aggregate.id != aggregate_id,
                m.Aggregate.deleted == 0,
                m.Aggregate.availability_zone.is_not(None),
            )
        )
        if zone is not None
    }


def _check_zone_change(session: Session, agg: m.Aggregate, zone: str | None, action: str) -> None:
    """Nova's is_safe_to_update_az for update and set_metadata (400 on failure): a zone
    must not be the internal one nor clash with another aggregate of the same hosts, and the
    zone of hosts that run servers does not change under them."""
    if zone == agg.availability_zone:
        return
    if zone == INTERNAL_ZONE:
        _invalid(action, agg.id, f"The {INTERNAL_ZONE} availability zone is reserved.")
    hosts = _host_ids(session, agg.id)
    if zone is not None:
        clash = sorted(_other_zones(session, hosts, agg.id) - {zone})
        if clash:
            _invalid(action, agg.id, f"One or more hosts already in availability zone(s) {clash}")
    if (
        hosts
        and session.scalars(
            select(m.Instance.id).where(
                m.Instance.host_id.in_(hosts), m.Instance.deleted.is_(False)
            )
        ).first()
    ):
        _invalid(
            action,
            agg.id,
            "Cannot change the availability zone of an aggregate whose hosts run servers.",
        )


_ACTION_TEXT = {
    "update": "Cannot update aggregate {id}. Reason: {reason}",
    "update_meta": "Cannot update metadata of aggregate {id}. Reason: {reason}",
}


def _invalid(action: str, aggregate_id: int, reason: str) -> None:
    raise BadRequest(_ACTION_TEXT[action].format(id=aggregate_id, reason=reason))


# -- changes ------------------------------------------------------------------------------


def check_create_zone(zone: Any) -> str | None:
    """The zone a create may name: none, or a valid name other than the internal one."""
    if zone is None:
        return None
    zone = zone_name(zone)
    if zone == INTERNAL_ZONE:
        raise BadRequest(
            f"Cannot create aggregate. Reason: The {INTERNAL_ZONE} availability zone is reserved."
        )
    return zone


def create(session: Session, name: str, zone: str | None) -> AggregateView:
    """``name`` and ``zone`` as the API checked them (check_name, check_create_zone)."""
    lock_for_claims(session)
    if _name_taken(session, name):
        raise Conflict(f"Aggregate {name} already exists.")
    row = m.Aggregate(uuid=str(uuid.uuid4()), name=name, availability_zone=zone, deleted=0)
    session.add(row)
    _flush_unique(session, name)
    return views(session, [row])[0]


@dataclass(frozen=True)
class AggregateUpdate:
    """A rename and/or re-zone as the API parsed it: ``name`` None keeps the name; the zone
    changes only when ``set_zone`` (to ``zone``, None clearing it)."""

    name: str | None = None
    set_zone: bool = False
    zone: str | None = None


def update(session: Session, aggregate_id: str, change: AggregateUpdate) -> AggregateView:
    """Rename and/or re-zone; the zone change is checked against the hosts' other zones and
    their servers (_check_zone_change)."""
    lock_for_claims(session)
    agg = get(session, aggregate_id)
    if change.name is not None and change.name != agg.name:
        if _name_taken(session, change.name, agg.id):
            raise Conflict(f"Aggregate {change.name} already exists.")
        agg.name = change.name
    if change.set_zone:
        _check_zone_change(session, agg, change.zone, "update")
        agg.availability_zone = change.zone
    agg.updated_at = utcnow()
    _flush_unique(session, agg.name)
    return views(session, [agg])[0]


def delete_aggregate(session: Session, aggregate_id: str) -> None:
    """Soft-delete (DESIGN.md rule 7); an aggregate that still has hosts is 400, as Nova."""
    lock_for_claims(session)
    agg = get(session, aggregate_id)
    if _host_ids(session, agg.id):
        raise BadRequest(f"Cannot remove host from aggregate {agg.id}. Reason: not empty.")
    session.execute(delete(m.AggregateMetadata).where(m.AggregateMetadata.aggregate_id == agg.id))
    agg.deleted = agg.id
    agg.deleted_at = utcnow()
    session.flush()


def _host_named(session: Session, name: Any) -> m.Host:
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        raise BadRequest(
            f"Invalid input for field/attribute host. Value: {name}. "
            "A string of 1 to 255 characters is required."
        )
    host = session.scalars(select(m.Host).where(m.Host.name == name)).first()
    if host is None:
        raise NotFound(f"Compute host {name} could not be found.")
    return host


def add_host(session: Session, aggregate_id: str, host_name: Any) -> AggregateView:
    """404 unknown host; 409 already a member, or a member of an aggregate in another zone
    (a host is in one zone only), as Nova answers add_host."""
    lock_for_claims(session)
    agg = get(session, aggregate_id)
    host = _host_named(session, host_name)
    if session.get(m.AggregateHost, (agg.id, host.id)) is not None:
        raise Conflict(f"The aggregate {agg.id} already has host {host.name}.")
    if agg.availability_zone is not None:
        clash = sorted(_other_zones(session, [host.id], agg.id) - {agg.availability_zone})
        if clash:
            raise Conflict(
                f"Cannot add host to aggregate {agg.id}. Reason: One or more hosts already "
                f"in availability zone(s) {clash}."
            )
    session.add(m.AggregateHost(aggregate_id=agg.id, host_id=host.id))
    agg.updated_at = utcnow()
    session.flush()
    return views(session, [agg])[0]


def remove_host(session: Session, aggregate_id: str, host_name: Any) -> AggregateView:
    """404 unknown host, or a host that is not a member (Nova's AggregateHostNotFound)."""
    lock_for_claims(session)
    agg = get(session, aggregate_id)
    host = _host_named(session, host_name)
    member = session.get(m.AggregateHost, (agg.id, host.id))
    if member is None:
        raise NotFound(f"Aggregate {agg.id} has no host {host.name}.")
    session.delete(member)
    agg.updated_at = utcnow()
    session.flush()
    return views(session, [agg])[0]


def set_metadata(session: Session, aggregate_id: str, metadata: Any) -> AggregateView:
    """Merge keys into the metadata; a null value deletes its key. ``availability_zone``
    is the aggregate's zone (null takes the aggregate out of any zone)."""
    if not isinstance(metadata, dict):
        raise BadRequest(
            f"Invalid input for field/attribute metadata. Value: {metadata}. "
            f"{metadata!r} is not of type 'object'"
        )
    for key, value in metadata.items():
        if not 1 <= len(key) <= 255:
            raise BadRequest(
                f"Invalid input for field/attribute metadata. Value: {metadata}. "
                "Keys must be 1 to 255 characters long."
            )
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise BadRequest(
                f"Invalid input for field/attribute {key}. Value: {value}. "
                "A string of at most 255 characters or null is required."
            )
    lock_for_claims(session)
    agg = get(session, aggregate_id)
    if AZ_KEY in metadata:
        zone = metadata[AZ_KEY]
        if zone is not None:
            if zone == "":
                _invalid(
                    "update_meta",
                    agg.id,
                    f"Aggregate {agg.id} does not support empty named availability zone",
                )
            zone = zone_name(zone)
        _check_zone_change(session, agg, zone, "update_meta")
        agg.availability_zone = zone
    for key, value in metadata.items():
        if key == AZ_KEY:
            continue
        row = session.get(m.AggregateMetadata, (agg.id, key))
        if value is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(m.AggregateMetadata(aggregate_id=agg.id, key=key, value=value))
        else:
            row.value = value
    agg.updated_at = utcnow()
    session.flush()
    return views(session, [agg])[0]

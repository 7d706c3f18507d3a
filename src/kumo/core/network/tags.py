"""Tags on networking resources (Neutron's standard-attr tags), in one table for all kinds."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest
from kumo.db import models as m

MAX_TAG_LENGTH = 255


def tags_of(session: Session, resource_type: str, ids: Iterable[str]) -> dict[str, list[str]]:
    """Tags of many resources in one query: id -> sorted tags (absent ids have none)."""
    wanted = list(ids)
    found: dict[str, list[str]] = {i: [] for i in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(m.NetworkTag.resource_id, m.NetworkTag.tag).where(
            m.NetworkTag.resource_type == resource_type, m.NetworkTag.resource_id.in_(wanted)
        )
    )
    for resource_id, tag in rows:
        found.setdefault(resource_id, []).append(tag)
    for tags in found.values():
        tags.sort()
    return found


def check_tag(tag: object) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH or "," in tag:
        raise BadRequest(
            f"Invalid tag {tag!r}: a non-empty string of at most 255 characters without commas."
        )
    return tag


def replace_tags(
    session: Session, resource_type: str, resource_id: str, tags: Iterable[str]
) -> list[str]:
    wanted = sorted({check_tag(t) for t in tags})
    drop_tags(session, resource_type, resource_id)
    for tag in wanted:
        session.add(m.NetworkTag(resource_type=resource_type, resource_id=resource_id, tag=tag))
    return wanted


def drop_tags(session: Session, resource_type: str, resource_id: str) -> None:
    """Called when a resource is deleted: tags do not outlive it."""
    session.execute(
        delete(m.NetworkTag).where(
            m.NetworkTag.resource_type == resource_type, m.NetworkTag.resource_id == resource_id
        )
    )

"""Server tags (Nova's compute microversion 2.26): short labels on a server, listed,
set one by one or all at once, and used to filter server listings.

As in Nova: at most 50 tags on a server, each 1 to 60 characters with neither ``/`` nor
``,`` (a tag travels in URL paths and in comma-separated filters); changes are refused
(409) unless the server is ACTIVE, PAUSED, SUSPENDED or SHUTOFF (``vm_state``, whatever
task is in flight), and allowed on a locked server. A tag change is no instance action
(Nova records none).

Each change bumps the server row's version first (``_changing``): changes of one server's
tags queue on its row, so two racing writers never pass the limit of 50 together; the one
that lost the race sees a lost update, which the API repeats on fresh rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from kumo.core.compute import servers, states
from kumo.core.errors import BadRequest, NotFound
from kumo.core.policy import Context, enforce
from kumo.db import models as m
from kumo.db.server_tag_tables import MAX_TAG_LENGTH, InstanceTag

MAX_TAGS = 50  # Nova's objects.instance.MAX_TAG_COUNT
_PATTERN = "^[^,/]*$"
_TAG = re.compile(_PATTERN)


def _schema_error(tag: str) -> str | None:
    """What Nova's JSON schema for one tag says of ``tag`` (None: it is valid)."""
    if not tag:
        return f"{tag!r} is too short"
    if len(tag) > MAX_TAG_LENGTH:
        return f"{tag!r} is too long"
    if not _TAG.match(tag):
        return f"{tag!r} does not match {_PATTERN!r}"
    return None


def check_tags(tags: list[str]) -> list[str]:
    """The tags of a whole-set replace, as Nova's body schema checks them (400 in its
    words); duplicates are one tag, in the order first given."""
    if len(tags) > MAX_TAGS:
        raise BadRequest(
            f"Invalid input for field/attribute tags. Value: {tags}. {tags} is too long"
        )
    for index, tag in enumerate(tags):
        error = _schema_error(tag)
        if error:
            raise BadRequest(f"Invalid input for field/attribute {index}. Value: {tag}. {error}")
    return list(dict.fromkeys(tags))


def tags_of(session: Session, instance_ids: Iterable[str]) -> dict[str, list[str]]:
    """The tags of each server, sorted, in one query (a listing shows them all)."""
    found: dict[str, list[str]] = {}
    ids = list(instance_ids)
    if not ids:
        return found
    rows = session.execute(
        select(InstanceTag.instance_id, InstanceTag.tag)
        .where(InstanceTag.instance_id.in_(ids))
        .order_by(InstanceTag.instance_id, InstanceTag.tag)
    )
    for instance_id, tag in rows:
        found.setdefault(instance_id, []).append(tag)
    return found


def _tags(session: Session, instance_id: str) -> list[str]:
    return tags_of(session, [instance_id]).get(instance_id, [])


def list_tags(session: Session, ctx: Context, server_id: str) -> list[str]:
    return _tags(session, servers.get(session, ctx, server_id).id)


def check_tag(session: Session, ctx: Context, server_id: str, tag: str) -> None:
    """GET /tags/{tag}: nothing when the server has it, 404 when not."""
    servers.get(session, ctx, server_id)
    if session.get(InstanceTag, (server_id, tag)) is None:
        raise NotFound(f"Server {server_id} has no tag '{tag}'")


# Each change: its name in a 409 (Nova's words) and its policy.
_CHANGES = {
    "update tag": "compute:server_tags:update",
    "update tags": "compute:server_tags:update_all",
    "delete tag": "compute:server_tags:delete",
    "delete tags": "compute:server_tags:delete_all",
}


def _changing(session: Session, ctx: Context, server_id: str, verb: str) -> m.Instance:
    """The server, once the caller may change its tags (403 for a reader), its state
    allows ``verb`` (409) and its row's version is bumped (its updated_at is written back
    unchanged: Nova's tag changes do not touch the server)."""
    instance = servers.get(session, ctx, server_id)
    enforce(ctx, _CHANGES[verb], {"project_id": instance.project_id})
    states.check(verb, instance)
    flag_modified(instance, "updated_at")
    session.flush()
    return instance


def add_tag(session: Session, ctx: Context, server_id: str, tag: str) -> bool:
    """PUT /tags/{tag}; True when the tag is new (201), False when the server had it (204).

    Nova's order: the server (404), its state (409), the tag (400), the count (400, also
    when the tag is already there), then whether it is new."""
    instance = _changing(session, ctx, server_id, "update tag")
    error = _schema_error(tag)
    if error:
        raise BadRequest(
            f"Tag '{tag}' is invalid. It must be a non empty string without characters "
            f"'/' and ','. Validation error message: {error}"
        )
    present = _tags(session, instance.id)
    if len(present) >= MAX_TAGS:
        raise BadRequest(f"The number of tags exceeded the per-server limit {MAX_TAGS}")
    if tag in present:
        return False
    session.add(InstanceTag(instance_id=instance.id, tag=tag))
    return True


def replace_tags(session: Session, ctx: Context, server_id: str, tags: list[str]) -> list[str]:
    """PUT /tags: the server's tags become ``tags``; returns them, sorted."""
    wanted = check_tags(tags)
    instance = _changing(session, ctx, server_id, "update tags")
    present = set(_tags(session, instance.id))
    gone = present - set(wanted)
    if gone:
        session.execute(
            delete(InstanceTag).where(
                InstanceTag.instance_id == instance.id, InstanceTag.tag.in_(gone)
            )
        )
    session.add_all(InstanceTag(instance_id=instance.id, tag=t) for t in wanted if t not in present)
    return sorted(wanted)


def delete_tag(session: Session, ctx: Context, server_id: str, tag: str) -> None:
    instance = _changing(session, ctx, server_id, "delete tag")
    row = session.get(InstanceTag, (instance.id, tag))
    if row is None:
        raise NotFound(f"Instance {server_id} has no tag '{tag}'")
    session.delete(row)


def delete_tags(session: Session, ctx: Context, server_id: str) -> None:
    instance = _changing(session, ctx, server_id, "delete tags")
    session.execute(delete(InstanceTag).where(InstanceTag.instance_id == instance.id))


@dataclass(frozen=True)
class TagFilters:
    """The tag filters of a server listing, each a set of tags or None (not asked):
    ``all_of`` (``tags``: servers with every one), ``any_of`` (``tags-any``: with at least
    one), ``not_all_of`` (``not-tags``: without at least one of them), ``not_any_of``
    (``not-tags-any``: with none of them). Given together, a server must pass each."""

    all_of: frozenset[str] | None = None
    any_of: frozenset[str] | None = None
    not_all_of: frozenset[str] | None = None
    not_any_of: frozenset[str] | None = None

    def apply(self, query: Select[Any]) -> Select[Any]:
        """``query`` (of servers) narrowed by each filter asked, in SQL."""
        if self.all_of is not None:
            query = query.where(m.Instance.id.in_(_having_all(self.all_of)))
        if self.any_of is not None:
            query = query.where(m.Instance.id.in_(_having_any(self.any_of)))
        if self.not_all_of is not None:
            query = query.where(m.Instance.id.not_in(_having_all(self.not_all_of)))
        if self.not_any_of is not None:
            query = query.where(m.Instance.id.not_in(_having_any(self.not_any_of)))
        return query


def _having_any(tags: frozenset[str]) -> Select[Any]:
    return select(InstanceTag.instance_id).where(InstanceTag.tag.in_(tags))


def _having_all(tags: frozenset[str]) -> Select[Any]:
    # A tag no server can have is left out of the IN but counted: no server has them all.
    return (
        _having_any(tags)
        .group_by(InstanceTag.instance_id)
        .having(func.count(InstanceTag.tag) == len(tags))
    )

"""Compute quotas. Usage is counted from rows (instances, key pairs), never from a counter
that could drift (DESIGN.md section 3.4); limits are per-project rows over defaults."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.errors import Forbidden
from kumo.db import models as m

DEFAULT_LIMITS: dict[str, int] = {
    "instances": 10,
    "cores": 20,
    "ram": 51200,
    "key_pairs": 100,
    "metadata_items": 128,
    "server_groups": 10,
    "server_group_members": 10,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}
UNLIMITED = -1


# Quota classes (os-quota-class-sets) live in quota_limits under reserved ids that no
# Keystone project can have (project ids are 32 hex digits): the ``default`` class, which
# every project without its own limit follows, and any other class Nova lets one store.
DEFAULT_CLASS = "default"
CLASS_ROW_IDS = {DEFAULT_CLASS: "__default__"}
CLASS_ROW_PREFIX = "__class__:"


def class_row_id(class_name: str) -> str:
    return CLASS_ROW_IDS.get(class_name) or CLASS_ROW_PREFIX + class_name


def limits(session: Session, project_id: str) -> dict[str, int]:
    """The project's limits: its own rows over the ``default`` class over DEFAULT_LIMITS."""
    result = dict(DEFAULT_LIMITS)
    default_id = class_row_id(DEFAULT_CLASS)
    rows = list(
        session.scalars(
            select(m.QuotaLimit).where(m.QuotaLimit.project_id.in_((default_id, project_id)))
        )
    )
    # The class first, then the project's own rows over it.
    for row in sorted(rows, key=lambda r: r.project_id != default_id):
        result[row.resource] = row.hard_limit
    return result


def usage(session: Session, project_id: str) -> dict[str, int]:
    """Servers, cores and RAM of the project's live servers, summed by the database from
    each server's flavor snapshot (one row back however many servers there are)."""
    live = (m.Instance.project_id == project_id) & m.Instance.deleted.is_(False)
    row = session.execute(
        select(
            func.count(m.Instance.id),
            func.coalesce(func.sum(m.Instance.flavor["vcpus"].as_integer()), 0),
            func.coalesce(func.sum(m.Instance.flavor["ram"].as_integer()), 0),
        ).where(live)
    ).one()
    return {"instances": int(row[0]), "cores": int(row[1]), "ram": int(row[2])}


def instances_unlimited(limit: dict[str, int]) -> bool:
    """No limit on servers, cores or RAM: a create has no quota to check."""
    return all(limit[r] == UNLIMITED for r in ("instances", "cores", "ram"))


def check_instances(
    session: Session,
    project_id: str,
    count: int,
    vcpus: int,
    ram_mb: int,
    limit: dict[str, int] | None = None,
) -> None:
    """Refuse (403, Nova's message) if ``count`` more servers of this size exceed a limit.
    The caller holds the claims lock (kumo.db.locking), so racing creates see each other.
    ``limit``: the project's limits when the caller has already read them."""
    limit = limit if limit is not None else limits(session, project_id)
    if instances_unlimited(limit):
        return
    used = usage(session, project_id)
    for resource, requested in (
        ("instances", count),
        ("cores", vcpus * count),
        ("ram", ram_mb * count),
    ):
        hard = limit[resource]
        if hard != UNLIMITED and used[resource] + requested > hard:
            raise Forbidden(
                f"Quota exceeded for {resource}: Requested {requested}, but "
                f"already used {used[resource]} of {hard} {resource}"
            )


def check_growth(session: Session, project_id: str, cores: int, ram: int) -> None:
    """Refuse a resize whose extra cores or RAM would exceed the project's limits."""
    limit = limits(session, project_id)
    used = usage(session, project_id)
    for resource, requested in (("cores", cores), ("ram", ram)):
        hard = limit[resource]
        if requested > 0 and hard != UNLIMITED and used[resource] + requested > hard:
            raise Forbidden(
                f"Quota exceeded for {resource}: Requested {requested}, but "
                f"already used {used[resource]} of {hard} {resource}"
            )

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


def limits(session: Session, project_id: str) -> dict[str, int]:
    result = dict(DEFAULT_LIMITS)
    for row in session.scalars(select(m.QuotaLimit).where(m.QuotaLimit.project_id == project_id)):
        result[row.resource] = row.hard_limit
    return result


def usage(session: Session, project_id: str) -> dict[str, int]:
    live = (m.Instance.project_id == project_id) & m.Instance.deleted.is_(False)
    count = session.execute(select(func.count(m.Instance.id)).where(live)).scalar_one()
    cores = ram = 0
    for flavor in session.scalars(select(m.Instance.flavor).where(live)):
        cores += int(flavor.get("vcpus", 0))
        ram += int(flavor.get("ram", 0))
    return {"instances": int(count), "cores": cores, "ram": ram}


def check_instances(session: Session, project_id: str, count: int, vcpus: int, ram_mb: int) -> None:
    """Refuse (403, Nova's message) if ``count`` more servers of this size exceed a limit.
    The caller holds the claims lock (kumo.db.locking), so racing creates see each other."""
    limit = limits(session, project_id)
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

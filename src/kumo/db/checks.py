"""`kumo db check`: invariants the database must hold, each with a safe repair if one exists.

Like OpenNebula's ``onedb fsck``: a readable list of problems, exit code 1 when any is found,
and ``--repair`` fixes the ones whose repair cannot lose data a human would want.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kumo.db import models as m
from kumo.db.types import utcnow


@dataclass(frozen=True)
class Problem:
    check: str
    detail: str
    repairable: bool


@dataclass(frozen=True)
class Check:
    name: str
    find: Callable[[Session], list[str]]
    repair: Callable[[Session], None] | None


def _ids(session: Session, model: type[m.Base]) -> set[str]:
    return set(session.scalars(select(model.id)))  # type: ignore[attr-defined]


def _orphan_assignments(session: Session) -> list[m.RoleAssignment]:
    actors = {"user": _ids(session, m.User), "group": _ids(session, m.Group)}
    targets = {"project": _ids(session, m.Project), "domain": _ids(session, m.Domain)}
    return [
        ra
        for ra in session.scalars(select(m.RoleAssignment))
        if ra.actor_id not in actors.get(ra.actor_type, set())
        or ra.target_id not in targets.get(ra.target_type, set())
    ]


def _find_orphan_assignments(session: Session) -> list[str]:
    return [
        f"role assignment {ra.actor_type} {ra.actor_id} on {ra.target_type} "
        f"{ra.target_id} (role {ra.role_id}) names something that no longer exists"
        for ra in _orphan_assignments(session)
    ]


def _repair_orphan_assignments(session: Session) -> None:
    for ra in _orphan_assignments(session):
        session.delete(ra)


def _bad_default_projects(session: Session) -> list[m.User]:
    projects = _ids(session, m.Project)
    return [
        u
        for u in session.scalars(select(m.User).where(m.User.default_project_id.is_not(None)))
        if u.default_project_id not in projects
    ]


def _find_bad_default_projects(session: Session) -> list[str]:
    return [
        f"user {u.name} ({u.id}) has default project {u.default_project_id}, which does not exist"
        for u in _bad_default_projects(session)
    ]


def _repair_bad_default_projects(session: Session) -> None:
    for user in _bad_default_projects(session):
        user.default_project_id = None


def _orphan_app_creds(session: Session) -> list[m.ApplicationCredential]:
    projects = _ids(session, m.Project)
    return [
        c for c in session.scalars(select(m.ApplicationCredential)) if c.project_id not in projects
    ]


def _find_orphan_app_creds(session: Session) -> list[str]:
    return [
        f"application credential {c.name} ({c.id}) is bound to project {c.project_id}, "
        "which does not exist"
        for c in _orphan_app_creds(session)
    ]


def _repair_orphan_app_creds(session: Session) -> None:
    for cred in _orphan_app_creds(session):
        session.delete(cred)


def _find_expired_revocations(session: Session) -> list[str]:
    count = len(
        list(
            session.scalars(
                select(m.RevocationEvent.id).where(m.RevocationEvent.expires_at < utcnow())
            )
        )
    )
    return (
        [f"{count} token revocation events have outlived every token they could match"]
        if count
        else []
    )


def _repair_expired_revocations(session: Session) -> None:
    session.execute(delete(m.RevocationEvent).where(m.RevocationEvent.expires_at < utcnow()))


def _find_orphan_projects(session: Session) -> list[str]:
    ids = _ids(session, m.Project)
    return [
        f"project {p.name} ({p.id}) has parent {p.parent_id}, which does not exist"
        for p in session.scalars(select(m.Project).where(m.Project.parent_id.is_not(None)))
        if p.parent_id not in ids
    ]


def _repair_orphan_projects(session: Session) -> None:
    ids = _ids(session, m.Project)
    orphans = [
        p.id
        for p in session.scalars(select(m.Project).where(m.Project.parent_id.is_not(None)))
        if p.parent_id not in ids
    ]
    if orphans:
        session.execute(update(m.Project).where(m.Project.id.in_(orphans)).values(parent_id=None))


CHECKS: tuple[Check, ...] = (
    Check("orphaned role assignments", _find_orphan_assignments, _repair_orphan_assignments),
    Check(
        "users with a missing default project",
        _find_bad_default_projects,
        _repair_bad_default_projects,
    ),
    Check(
        "application credentials of deleted projects",
        _find_orphan_app_creds,
        _repair_orphan_app_creds,
    ),
    Check("projects with a missing parent", _find_orphan_projects, _repair_orphan_projects),
    Check(
        "expired token revocation events", _find_expired_revocations, _repair_expired_revocations
    ),
)


def run_checks(session: Session, repair: bool = False) -> list[Problem]:
    """Every problem found (before any repair); with ``repair`` the repairable are fixed."""
    problems: list[Problem] = []
    for check in CHECKS:
        found = check.find(session)
        problems += [Problem(check.name, detail, check.repair is not None) for detail in found]
        if found and repair and check.repair is not None:
            check.repair(session)
            session.flush()
    return problems

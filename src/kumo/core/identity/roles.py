"""Roles, grants (role assignments) and the effective roles a token carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.identity.common import flush_unique, get_or_404, new_id
from kumo.db import models as m


def get_role(session: Session, role_id: str) -> m.Role:
    return get_or_404(session, m.Role, role_id, "role")


def list_roles(
    session: Session, name: str | None = None, domain_id: str | None = None
) -> list[m.Role]:
    query = select(m.Role).where(m.Role.domain_id == (domain_id or "")).order_by(m.Role.name)
    if name is not None:
        query = query.where(m.Role.name == name)
    return list(session.scalars(query))


@dataclass(frozen=True)
class RoleSpec:
    """A role to create, its fields checked by the API (kumo.api.identity.roles)."""

    name: str
    domain_id: str = ""
    description: str = ""


@dataclass(frozen=True)
class RoleUpdate:
    """What a role update changes: a field left None keeps its value. ``domain_id`` is
    what the request named ("" for none), only to refuse moving a role to another domain."""

    name: str | None = None
    description: str | None = None
    domain_id: str | None = None


def create_role(session: Session, spec: RoleSpec, role_id: str | None = None) -> m.Role:
    if spec.domain_id and session.get(m.Domain, spec.domain_id) is None:
        raise NotFound(f"Could not find domain: {spec.domain_id}.")
    role = m.Role(
        id=role_id or new_id(),
        name=spec.name,
        domain_id=spec.domain_id,
        description=spec.description,
    )
    session.add(role)
    flush_unique(session, "role", spec.name)
    return role


def update_role(session: Session, role_id: str, change: RoleUpdate) -> m.Role:
    role = get_role(session, role_id)
    if change.domain_id is not None and change.domain_id != role.domain_id:
        raise BadRequest("Cannot change the role's domain.")
    if change.name is not None:
        role.name = change.name
    if change.description is not None:
        role.description = change.description
    flush_unique(session, "role", role.name)
    return role


def drop_assignments(session: Session, *clauses: Any) -> None:
    """Delete the grants matching every clause, in one statement, before their owner goes:
    the database would cascade some of them, and the ORM must not delete a row twice."""
    session.execute(delete(m.RoleAssignment).where(*clauses))


def delete_role(session: Session, role_id: str) -> None:
    role = get_role(session, role_id)
    drop_assignments(session, m.RoleAssignment.role_id == role_id)
    session.execute(
        delete(m.ImpliedRole).where(
            (m.ImpliedRole.prior_role_id == role_id) | (m.ImpliedRole.implied_role_id == role_id)
        )
    )
    session.delete(role)


# Grants ---------------------------------------------------------------------------------


SYSTEM_ID = "system"


def _check_grant_parts(
    session: Session, actor_type: str, actor_id: str, target_type: str, target_id: str, role_id: str
) -> None:
    get_or_404(session, m.User if actor_type == "user" else m.Group, actor_id, actor_type)
    if target_type == "system":
        if target_id != SYSTEM_ID:
            raise NotFound(f"Could not find system: {target_id}.")
    else:
        get_or_404(
            session, m.Project if target_type == "project" else m.Domain, target_id, target_type
        )
    get_role(session, role_id)


def grant(
    session: Session,
    actor_type: str,
    actor_id: str,
    target_type: str,
    target_id: str,
    role_id: str,
    inherited: bool = False,
) -> None:
    _check_grant_parts(session, actor_type, actor_id, target_type, target_id, role_id)
    key = (actor_type, actor_id, target_type, target_id, role_id, inherited)
    if session.get(m.RoleAssignment, key) is None:
        session.add(
            m.RoleAssignment(
                actor_type=actor_type,
                actor_id=actor_id,
                target_type=target_type,
                target_id=target_id,
                role_id=role_id,
                inherited=inherited,
            )
        )


def check_grant(
    session: Session,
    actor_type: str,
    actor_id: str,
    target_type: str,
    target_id: str,
    role_id: str,
    inherited: bool = False,
) -> None:
    _check_grant_parts(session, actor_type, actor_id, target_type, target_id, role_id)
    key = (actor_type, actor_id, target_type, target_id, role_id, inherited)
    if session.get(m.RoleAssignment, key) is None:
        raise NotFound(
            f"Could not find role assignment with role: {role_id}, "
            f"{actor_type}: {actor_id}, {target_type}: {target_id}."
        )


def revoke_grant(
    session: Session,
    actor_type: str,
    actor_id: str,
    target_type: str,
    target_id: str,
    role_id: str,
    inherited: bool = False,
) -> None:
    _check_grant_parts(session, actor_type, actor_id, target_type, target_id, role_id)
    key = (actor_type, actor_id, target_type, target_id, role_id, inherited)
    row = session.get(m.RoleAssignment, key)
    if row is None:
        raise NotFound(
            f"Could not find role assignment with role: {role_id}, "
            f"{actor_type}: {actor_id}, {target_type}: {target_id}."
        )
    session.delete(row)


def list_grants(
    session: Session,
    actor_type: str,
    actor_id: str,
    target_type: str,
    target_id: str,
    inherited: bool = False,
) -> list[m.Role]:
    get_or_404(session, m.User if actor_type == "user" else m.Group, actor_id, actor_type)
    if target_type != "system":
        get_or_404(
            session, m.Project if target_type == "project" else m.Domain, target_id, target_type
        )
    return list(
        session.scalars(
            select(m.Role)
            .join(m.RoleAssignment, m.RoleAssignment.role_id == m.Role.id)
            .where(
                m.RoleAssignment.actor_type == actor_type,
                m.RoleAssignment.actor_id == actor_id,
                m.RoleAssignment.target_type == target_type,
                m.RoleAssignment.target_id == target_id,
                m.RoleAssignment.inherited == inherited,
            )
            .order_by(m.Role.name)
        )
    )


# Assignment listing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    """One row of /v3/role_assignments, after optional effective expansion."""

    role_id: str
    actor_type: str
    actor_id: str
    target_type: str
    target_id: str
    inherited: bool = False
    via_group: str | None = None
    prior_role: str | None = None


def list_assignments(session: Session, filters: dict[str, Any]) -> list[Assignment]:
    query = select(m.RoleAssignment)
    effective = bool(filters.get("effective"))
    if filters.get("role_id"):
        query = query.where(m.RoleAssignment.role_id == filters["role_id"])
    if filters.get("group_id"):
        query = query.where(
            m.RoleAssignment.actor_type == "group", m.RoleAssignment.actor_id == filters["group_id"]
        )
    if filters.get("inherited") is not None:
        query = query.where(m.RoleAssignment.inherited == filters["inherited"])
    rows = [
        Assignment(r.role_id, r.actor_type, r.actor_id, r.target_type, r.target_id, r.inherited)
        for r in session.scalars(query)
    ]
    if effective:
        rows = _expand_effective(session, rows)
    if filters.get("user_id"):
        rows = [r for r in rows if r.actor_type == "user" and r.actor_id == filters["user_id"]]
    if filters.get("project_id"):
        rows = [
            r for r in rows if r.target_type == "project" and r.target_id == filters["project_id"]
        ]
    if filters.get("system"):
        rows = [r for r in rows if r.target_type == "system"]
    if filters.get("domain_id"):
        rows = [
            r for r in rows if r.target_type == "domain" and r.target_id == filters["domain_id"]
        ]
    return sorted(set(rows), key=lambda a: (a.actor_id, a.target_id, a.role_id))


def _expand_effective(session: Session, rows: list[Assignment]) -> list[Assignment]:
    """Group grants become grants of each member; inherited domain grants reach projects."""
    members: dict[str, list[str]] = {}
    for gm in session.scalars(select(m.GroupMembership)):
        members.setdefault(gm.group_id, []).append(gm.user_id)
    result: list[Assignment] = []
    for row in rows:
        actors: list[tuple[str, str, str | None]]
        if row.actor_type == "group":
            actors = [("user", uid, row.actor_id) for uid in members.get(row.actor_id, [])]
        else:
            actors = [("user", row.actor_id, None)]
        if row.inherited and row.target_type == "domain":
            targets = [
                ("project", pid)
                for pid in session.scalars(
                    select(m.Project.id).where(m.Project.domain_id == row.target_id)
                )
            ]
        elif row.inherited:
            targets = [
                ("project", pid)
                for pid in session.scalars(
                    select(m.Project.id).where(m.Project.parent_id == row.target_id)
                )
            ]
        else:
            targets = [(row.target_type, row.target_id)]
        implied = implied_closure(session, {row.role_id}) - {row.role_id}
        for actor_type, actor_id, via in actors:
            for target_type, target_id in targets:
                result.append(
                    Assignment(
                        row.role_id, actor_type, actor_id, target_type, target_id, False, via
                    )
                )
                result += [
                    Assignment(
                        role_id,
                        actor_type,
                        actor_id,
                        target_type,
                        target_id,
                        False,
                        via,
                        row.role_id,
                    )
                    for role_id in implied
                ]
    # Domain-specific roles only imply others; they never show as effective grants.
    domain_roles = set(session.scalars(select(m.Role.id).where(m.Role.domain_id != "")))
    return [a for a in result if a.role_id not in domain_roles]


def effective_roles(
    session: Session,
    user_id: str,
    project: m.Project | None = None,
    domain_id: str | None = None,
    system: bool = False,
) -> list[m.Role]:
    """Roles the user holds on a project or domain (direct, via groups, inherited), with the
    roles they imply. Empty means the user may not scope there."""
    group_ids = list(
        session.scalars(
            select(m.GroupMembership.group_id).where(m.GroupMembership.user_id == user_id)
        )
    )
    actor_clause = (m.RoleAssignment.actor_type == "user") & (m.RoleAssignment.actor_id == user_id)
    if group_ids:
        actor_clause = actor_clause | (
            (m.RoleAssignment.actor_type == "group") & m.RoleAssignment.actor_id.in_(group_ids)
        )
    if project is not None:
        target_clause = (
            (m.RoleAssignment.target_id == project.id) & (m.RoleAssignment.inherited.is_(False))
        ) | (
            m.RoleAssignment.target_id.in_([project.domain_id, project.parent_id or ""])
            & m.RoleAssignment.inherited.is_(True)
        )
    elif domain_id is not None:
        target_clause = (
            (m.RoleAssignment.target_type == "domain")
            & (m.RoleAssignment.target_id == domain_id)
            & m.RoleAssignment.inherited.is_(False)
        )
    elif system:
        target_clause = (m.RoleAssignment.target_type == "system") & (
            m.RoleAssignment.target_id == SYSTEM_ID
        )
    else:
        return []
    roles = list(
        session.scalars(
            select(m.Role)
            .join(m.RoleAssignment, m.RoleAssignment.role_id == m.Role.id)
            .where(actor_clause, target_clause)
            .distinct()
        )
    )
    return token_roles(session, roles)


def token_roles(session: Session, held: list[m.Role]) -> list[m.Role]:
    """The roles a token carries: the held ones plus everything they imply, without
    domain-specific roles (those only exist to imply global ones, as in Keystone)."""
    closure = implied_closure(session, {r.id for r in held})
    roles = list(session.scalars(select(m.Role).where(m.Role.id.in_(closure))))
    return sorted((r for r in roles if not r.domain_id), key=lambda r: r.name)


def _inference_map(session: Session) -> dict[str, set[str]]:
    rules: dict[str, set[str]] = {}
    for rule in session.scalars(select(m.ImpliedRole)):
        rules.setdefault(rule.prior_role_id, set()).add(rule.implied_role_id)
    return rules


def implied_closure(session: Session, role_ids: set[str]) -> set[str]:
    """The given role ids and every role they imply, transitively."""
    if not role_ids:
        return set()
    rules = _inference_map(session)
    result = set(role_ids)
    pending = list(role_ids)
    while pending:
        for implied in rules.get(pending.pop(), ()):
            if implied not in result:
                result.add(implied)
                pending.append(implied)
    return result


# Role inference rules ------------------------------------------------------------------

# Keystone's default: nothing may imply admin, or every grant would be a path to it.
PROHIBITED_IMPLIED = ("admin",)


def add_inference(session: Session, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
    prior = get_role(session, prior_id)
    implied = get_role(session, implied_id)
    if implied.name in PROHIBITED_IMPLIED:
        raise Forbidden(f"{implied.name} is not permitted to be an implied role.")
    if implied.domain_id and not prior.domain_id:
        raise Forbidden("A global role cannot imply a domain-specific role.")
    if prior_id == implied_id or prior_id in implied_closure(session, {implied_id}):
        raise BadRequest(
            f"Role {implied.name} already implies {prior.name}: the rule would make a cycle."
        )
    if session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
        session.add(m.ImpliedRole(prior_role_id=prior_id, implied_role_id=implied_id))
    return prior, implied


def get_inference(session: Session, prior_id: str, implied_id: str) -> tuple[m.Role, m.Role]:
    prior = get_role(session, prior_id)
    implied = get_role(session, implied_id)
    if session.get(m.ImpliedRole, (prior_id, implied_id)) is None:
        raise NotFound(f"{prior.name} does not imply {implied.name}.")
    return prior, implied


def delete_inference(session: Session, prior_id: str, implied_id: str) -> None:
    get_inference(session, prior_id, implied_id)
    row = session.get(m.ImpliedRole, (prior_id, implied_id))
    session.delete(row)


def implied_by(session: Session, prior_id: str) -> list[m.Role]:
    get_role(session, prior_id)
    return list(
        session.scalars(
            select(m.Role)
            .join(m.ImpliedRole, m.ImpliedRole.implied_role_id == m.Role.id)
            .where(m.ImpliedRole.prior_role_id == prior_id)
            .order_by(m.Role.name)
        )
    )


def all_inferences(session: Session) -> list[tuple[m.Role, list[m.Role]]]:
    roles = {r.id: r for r in session.scalars(select(m.Role))}
    return [
        (roles[prior], sorted((roles[i] for i in implied), key=lambda r: r.name))
        for prior, implied in sorted(_inference_map(session).items())
    ]

"""OS-TRUST: a trustor delegates some of their project roles to a trustee.

Trusts can be created, listed, shown and deleted; authenticating *with* a trust (trust-scoped
tokens) is not implemented yet and is refused with a clear message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.identity.appcreds import parse_expiry
from kumo.core.identity.common import get_or_404, new_id, optional_bool
from kumo.core.identity.roles import effective_roles
from kumo.db import models as m


def create(session: Session, caller_user_id: str, body: dict[str, Any]) -> m.Trust:
    trustor = body.get("trustor_user_id")
    trustee = body.get("trustee_user_id")
    if not isinstance(trustor, str) or not isinstance(trustee, str):
        raise BadRequest("A trust needs 'trustor_user_id' and 'trustee_user_id'.")
    if trustor != caller_user_id:
        raise Forbidden("Only the trustor may create a trust.")
    get_or_404(session, m.User, trustee, "user")
    project_id = body.get("project_id")
    role_ids: list[str] = []
    remaining = body.get("remaining_uses")
    if remaining is not None and (not isinstance(remaining, int) or remaining < 1):
        raise BadRequest("Invalid input for field 'remaining_uses': a positive integer.")
    if project_id is not None:
        project = get_or_404(session, m.Project, str(project_id), "project")
        held = effective_roles(session, trustor, project=project)
        by_id = {r.id: r for r in held}
        by_name = {r.name.lower(): r for r in held}
        wanted = body.get("roles") or []
        if not isinstance(wanted, list) or not wanted:
            raise BadRequest("A project trust must delegate at least one role.")
        for ref in wanted:
            role = None
            if isinstance(ref, dict) and ref.get("id"):
                role = by_id.get(ref["id"])
            elif isinstance(ref, dict) and ref.get("name"):
                role = by_name.get(str(ref["name"]).lower())
            if role is None:
                raise Forbidden(f"The trustor does not hold role {ref} on the project.")
            role_ids.append(role.id)
    trust = m.Trust(
        id=new_id(),
        trustor_user_id=trustor,
        trustee_user_id=trustee,
        project_id=project_id,
        impersonation=optional_bool(body, "impersonation", False),
        expires_at=parse_expiry(body.get("expires_at")),
        remaining_uses=remaining,
        role_ids=list(dict.fromkeys(role_ids)),
    )
    session.add(trust)
    return trust


def get(session: Session, trust_id: str, user_id: str, is_admin: bool) -> m.Trust:
    trust = session.get(m.Trust, trust_id)
    if trust is None or not (is_admin or user_id in (trust.trustor_user_id, trust.trustee_user_id)):
        raise NotFound(f"Could not find trust: {trust_id}.")
    return trust


def list_trusts(
    session: Session,
    user_id: str,
    is_admin: bool,
    trustor: str | None = None,
    trustee: str | None = None,
) -> list[m.Trust]:
    query = select(m.Trust).order_by(m.Trust.created_at)
    if not is_admin:
        if (trustor and trustor != user_id) or (trustee and trustee != user_id):
            raise Forbidden("You may only list trusts you are part of.")
        query = query.where(
            or_(m.Trust.trustor_user_id == user_id, m.Trust.trustee_user_id == user_id)
        )
    if trustor:
        query = query.where(m.Trust.trustor_user_id == trustor)
    if trustee:
        query = query.where(m.Trust.trustee_user_id == trustee)
    return list(session.scalars(query))


def delete(session: Session, trust_id: str, user_id: str, is_admin: bool) -> None:
    trust = get(session, trust_id, user_id, is_admin)
    if not is_admin and trust.trustor_user_id != user_id:
        raise Forbidden("Only the trustor may delete a trust.")
    session.delete(trust)


def roles_of(session: Session, trust: m.Trust) -> list[m.Role]:
    if not trust.role_ids:
        return []
    return list(session.scalars(select(m.Role).where(m.Role.id.in_(trust.role_ids))))

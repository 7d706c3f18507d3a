"""Application credentials: a secret bound to one user, one project and a set of roles."""

from __future__ import annotations

import base64
import datetime as dt
import os
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.identity import revocation
from kumo.core.identity.common import flush_unique, new_id, optional_bool, optional_str
from kumo.core.identity.users import get_user
from kumo.core.passwords import hash_secret
from kumo.db import models as m
from kumo.db.types import utcnow


def parse_expiry(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("Invalid input for field 'expires_at': expected an ISO 8601 time.")
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            f"Invalid input for field 'expires_at': {value!r} is not an ISO 8601 time."
        ) from exc
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    if parsed <= utcnow():
        raise BadRequest("Invalid input for field 'expires_at': the time is in the past.")
    return parsed


def create(
    session: Session, user_id: str, project_id: str, token_roles: list[m.Role], body: dict[str, Any]
) -> tuple[m.ApplicationCredential, str]:
    """Create a credential; returns it with its secret, which is never shown again."""
    get_user(session, user_id)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest(
            "Invalid input for field 'name': a non-empty string of at most 255 "
            "characters is required."
        )
    secret = (
        optional_str(body, "secret")
        or base64.urlsafe_b64encode(os.urandom(64)).rstrip(b"=").decode()
    )
    available = {r.id: r for r in token_roles}
    by_name = {r.name: r for r in token_roles}
    requested = body.get("roles")
    if not requested:  # like Keystone: none or [] means every role of the token
        role_ids = list(available)
    else:
        if not isinstance(requested, list):
            raise BadRequest("Invalid input for field 'roles': expected a list.")
        role_ids = []
        for ref in requested:
            role = None
            if isinstance(ref, dict) and ref.get("id"):
                role = available.get(ref["id"])
            elif isinstance(ref, dict) and ref.get("name"):
                role = by_name.get(ref["name"])
            else:
                raise BadRequest("Invalid input for field 'roles': each role needs 'id' or 'name'.")
            if role is None:
                raise Forbidden(
                    f"Cannot delegate role {ref}: the user does not hold it on the project."
                )
            role_ids.append(role.id)
    if not role_ids:
        raise BadRequest("An application credential needs at least one role.")
    access_rules = body.get("access_rules") or []
    if not isinstance(access_rules, list):
        raise BadRequest("Invalid input for field 'access_rules': expected a list.")
    cred = m.ApplicationCredential(
        id=new_id(),
        name=name,
        user_id=user_id,
        project_id=project_id,
        secret_hash=hash_secret(secret),
        description=optional_str(body, "description", "") or "",
        expires_at=parse_expiry(body.get("expires_at")),
        unrestricted=optional_bool(body, "unrestricted", False),
        role_ids=list(dict.fromkeys(role_ids)),
        access_rules=access_rules,
    )
    session.add(cred)
    flush_unique(session, "application credential", name)
    return cred, secret


def get(session: Session, user_id: str, cred_id: str) -> m.ApplicationCredential:
    cred = session.get(m.ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise NotFound(f"Could not find Application Credential: {cred_id}.")
    return cred


def list_for_user(
    session: Session, user_id: str, name: str | None = None
) -> list[m.ApplicationCredential]:
    get_user(session, user_id)
    query = (
        select(m.ApplicationCredential)
        .where(m.ApplicationCredential.user_id == user_id)
        .order_by(m.ApplicationCredential.name)
    )
    if name is not None:
        query = query.where(m.ApplicationCredential.name == name)
    return list(session.scalars(query))


def delete(session: Session, user_id: str, cred_id: str) -> None:
    cred = get(session, user_id, cred_id)
    revocation.revoke_app_cred(session, cred.id)
    session.delete(cred)


def roles_of(session: Session, cred: m.ApplicationCredential) -> list[m.Role]:
    if not cred.role_ids:
        return []
    return list(session.scalars(select(m.Role).where(m.Role.id.in_(cred.role_ids))))

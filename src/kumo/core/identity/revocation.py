"""Token revocation events (tokens themselves are never stored)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from kumo.core.identity.tokens import TokenPayload
from kumo.db import models as m
from kumo.db.types import utcnow

# Events must outlive every token they could match; tokens never live longer than this.
MAX_TOKEN_LIFETIME = dt.timedelta(days=7)


def _event(session: Session, **match: str | None) -> None:
    now = utcnow()
    session.add(
        m.RevocationEvent(
            issued_before=now, revoked_at=now, expires_at=now + MAX_TOKEN_LIFETIME, **match
        )
    )


def revoke_token(session: Session, payload: TokenPayload) -> None:
    """Revoke one token and every token derived from it (they share the audit chain)."""
    _event(session, audit_id=payload.audit_ids[0] if payload.audit_ids else None)


def revoke_user(session: Session, user_id: str) -> None:
    _event(session, user_id=user_id)


def revoke_app_cred(session: Session, app_cred_id: str) -> None:
    _event(session, app_cred_id=app_cred_id)


def is_revoked(session: Session, payload: TokenPayload) -> bool:
    clauses = [m.RevocationEvent.user_id == payload.user_id]
    if payload.audit_ids:
        clauses.append(m.RevocationEvent.audit_id.in_(payload.audit_ids))
    if payload.app_cred_id:
        clauses.append(m.RevocationEvent.app_cred_id == payload.app_cred_id)
    hit = session.scalars(
        select(m.RevocationEvent.id)
        .where(or_(*clauses), m.RevocationEvent.issued_before >= payload.issued_at)
        .limit(1)
    ).first()
    return hit is not None


def purge_expired(session: Session) -> int:
    result = session.execute(
        delete(m.RevocationEvent).where(m.RevocationEvent.expires_at < utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)

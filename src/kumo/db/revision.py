"""The identity revision: a value that changes with every write to an identity table.

Token validation caches its result per token and trusts the cache only while the revision is
unchanged, so a revoked token, a disabled user or a removed grant takes effect at once on
every API copy, at the price of one indexed single-row read per validation.
"""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from kumo.db import models as m

IDENTITY_REVISION = "identity_revision"

# Tables whose rows decide whether a token is valid and what it carries.
IDENTITY_MODELS: tuple[type[m.Base], ...] = (
    m.Domain,
    m.Project,
    m.User,
    m.Group,
    m.GroupMembership,
    m.Role,
    m.RoleAssignment,
    m.ImpliedRole,
    m.ApplicationCredential,
    m.RevocationEvent,
)

_READ = select(m.Setting.value).where(m.Setting.key == IDENTITY_REVISION)


def current(session: Session) -> str | None:
    value: str | None = session.execute(_READ).scalar_one_or_none()
    return value


def bump(session: Session) -> None:
    """Before each flush (kumo.db.engine.Database calls it): a new revision when the flush
    writes a row of an identity table, in the same transaction."""
    touched = (*session.new, *session.dirty, *session.deleted)
    if not any(isinstance(obj, IDENTITY_MODELS) for obj in touched):
        return
    value = uuid.uuid4().hex
    result = session.execute(
        update(m.Setting).where(m.Setting.key == IDENTITY_REVISION).values(value=value)
    )
    if not getattr(result, "rowcount", 0):
        session.execute(insert(m.Setting).values(key=IDENTITY_REVISION, value=value))

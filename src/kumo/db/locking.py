"""Serialising the writers that must see each other: quota checks and host claims.

PostgreSQL and MariaDB lock the rows (``SELECT ... FOR UPDATE``). SQLite has one writer
at a time; a transaction takes the write lock with its first write, and must do so before
it reads anything, or it would decide on a snapshot another writer has since changed. So on
SQLite the lock is a no-op write issued as the transaction's first statement.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kumo.db import models as m


def lock_for_claims(
    session: Session, host_ids: list[str] | None = None, project_id: str | None = None
) -> None:
    """Call first in a transaction that checks capacity or quota, then writes a claim."""
    if session.get_bind().dialect.name == "sqlite":
        upsert = sqlite_insert(m.Setting).values(key="claims_lock", value="x")
        session.execute(
            upsert.on_conflict_do_update(index_elements=[m.Setting.key], set_={"value": "x"})
        )
        return
    if project_id is not None:
        session.execute(select(m.Project.id).where(m.Project.id == project_id).with_for_update())
    if host_ids:
        session.execute(select(m.Host.id).where(m.Host.id.in_(sorted(host_ids))).with_for_update())

"""Serialising the writers that must see each other: quota checks and host claims.

PostgreSQL and MariaDB lock a row (``SELECT ... FOR UPDATE``): the project's row for a
quota check, one ``claims_lock`` settings row for host claims. One row, not every host
row: the agents' heartbeats update the host rows many times a second, and a claim that
locked them all would queue behind each heartbeat (and they behind it).

SQLite has one writer at a time; a transaction takes the write lock with its first write,
and must do so before it reads anything, or it would decide on a snapshot another writer
has since changed. So on SQLite the lock is a no-op write issued as the transaction's first
statement.
"""

from __future__ import annotations

from sqlalchemy import Engine, Executable, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from kumo.db import models as m

CLAIMS_KEY = "claims_lock"


def lock_for_claims(session: Session, project_id: str | None = None) -> None:
    """Call first in a transaction that checks capacity or quota, then writes a claim.

    With ``project_id``: a quota check of that project (creates in other projects go on).
    Without: a host claim (placement, resize in place), serialised cloud-wide."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        upsert = sqlite_insert(m.Setting).values(key=CLAIMS_KEY, value="x")
        session.execute(
            upsert.on_conflict_do_update(index_elements=[m.Setting.key], set_={"value": "x"})
        )
        return
    if project_id is not None:
        session.execute(select(m.Project.id).where(m.Project.id == project_id).with_for_update())
        return
    claims_row = select(m.Setting.key).where(m.Setting.key == CLAIMS_KEY).with_for_update()
    if session.execute(claims_row).first() is None:
        _create_claims_row(session, dialect)
        session.execute(claims_row)


def _create_claims_row(session: Session, dialect: str) -> None:
    """The first claim ever: create the lock row in a transaction of its own, committed at
    once, so the claim's transaction then locks an existing row. (Inserting it inside the
    claim's transaction deadlocks on MariaDB: racing INSERT IGNOREs that meet the new row
    take shared locks, and two of them upgrading to FOR UPDATE deadlock.)"""
    row = {"key": CLAIMS_KEY, "value": "x"}
    statement: Executable
    if dialect == "postgresql":
        statement = pg_insert(m.Setting).values(row).on_conflict_do_nothing()
    else:
        statement = insert(m.Setting).values(row).prefix_with("IGNORE")
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with engine.begin() as conn:
        conn.execute(statement)

"""The leadership lease: a row renewed by the active controller; a standby takes over when
it lapses. Plain SQL transactions, no home-made consensus."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.exc import IntegrityError

from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.types import utcnow

LEASE_NAME = "controller"


def try_acquire(db: Database, holder: str, ttl: float) -> bool:
    """Take or renew the lease; True when ``holder`` holds it afterwards."""
    try:
        with db.session() as session:
            now = utcnow()
            row = session.get(m.Lease, LEASE_NAME, with_for_update=True)
            expiry = now + dt.timedelta(seconds=ttl)
            if row is None:
                session.add(m.Lease(name=LEASE_NAME, holder=holder, expires_at=expiry))
                return True
            if row.holder == holder or row.expires_at < now:
                row.holder = holder
                row.expires_at = expiry
                return True
            return False
    except IntegrityError:
        return False  # another controller created the row first


def release(db: Database, holder: str) -> None:
    with db.session() as session:
        row = session.get(m.Lease, LEASE_NAME, with_for_update=True)
        if row is not None and row.holder == holder:
            session.delete(row)

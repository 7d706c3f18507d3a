"""Networking writes wake the agents' network long-poll once they commit: ORM rows and
bulk statements alike; a rolled-back transaction or a write to another table does not."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, update

from kumo.core import wakeup
from kumo.core.network import changes
from kumo.db import models as m
from kumo.db.engine import Database


class Boom(Exception):
    pass


def test_commits_of_networking_tables_wake_and_others_do_not(database: Database) -> None:
    changes.watch()
    changes.watch()  # idempotent: one hook each, one notification per commit
    mark = wakeup.mark(wakeup.NETWORK)

    with database.session() as session:
        session.execute(update(m.Port).values(status="DOWN"))
    assert wakeup.mark(wakeup.NETWORK) == mark + 1, "a bulk UPDATE of ports wakes once"

    with database.session() as session:
        session.execute(delete(m.IPAllocation))
        session.execute(delete(m.SecurityGroupRule))
    assert wakeup.mark(wakeup.NETWORK) == mark + 2, "several writes, one commit, one wake"

    with pytest.raises(Boom), database.session() as session:
        session.execute(update(m.Port).values(status="DOWN"))
        raise Boom
    with database.session() as session:
        session.execute(update(m.Flavor).values(description=None))
    assert wakeup.mark(wakeup.NETWORK) == mark + 2, "rolled back, or not networking"

"""Wake-ups asked for inside a transaction, fired once it commits, whoever runs it.

The lifecycle runner (kumo.core.operations) wakes the hosts of the operations it runs. A
change made outside it that leaves work for an agent (a volume created, extended or
deleted through the Block Storage API, a snapshot...) asks here instead of leaving the
call to each HTTP handler: the wake-up follows the change into every caller (API, CLI,
controller), is fired only after the commit (an agent woken earlier would read the old
rows) and is dropped with a rollback. Only an accelerator (DESIGN.md 3.2).
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import Session

from kumo.core import wakeup

_KEY = "kumo.wake_after_commit"


def wake_after_commit(session: Session, *topics: str) -> None:
    """Notify ``topics`` (kumo.core.wakeup) once ``session``'s transaction commits."""
    pending: dict[str, None] = session.info.setdefault(_KEY, {})
    pending.update(dict.fromkeys(topics))


@event.listens_for(Session, "after_commit")
def _fire(session: Session) -> None:
    topics = session.info.pop(_KEY, None)
    if topics:
        wakeup.notify(*topics)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_KEY, None)

"""Records written in the very transaction of the change that causes them.

The usage ledger (DESIGN.md 3.9), the notification outbox (3.10) and the events of instance
actions must never drift from the rows they describe. Rather than trusting each of the many
paths that change a server, a volume or an action (API operations, agent observations, the
controller's stuck-task resolution, HA) to remember to write them, each is a *recorder*: a
function that looks at what the session is about to flush (new, changed and deleted rows,
with their attribute history) and adds its own rows to the same flush. A path that forgets
nothing because it is asked nothing.

A recorder must be idempotent per flush: it reads attribute *history*, which SQLAlchemy
resets after every flush, so a change is seen exactly once however often the session
autoflushes. It adds rows; it never changes the rows it looks at, and it does no I/O (no
broker, no HTTP): the outbox is drained after commit by the controller's publisher.

The recorders are declared in one table (``_recorders``), imported lazily to keep this
module free of import cycles; the hook is installed when ``kumo.core`` is first imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

Recorder = Callable[[Session], None]


def _recorders() -> Iterable[Recorder]:
    """Every recorder, in the order they run (a later one sees the rows an earlier added)."""
    from kumo.core import usage_ledger
    from kumo.core.compute import action_events
    from kumo.core.notifications import recorder as notifications

    # The events' recorder ends an action whose task ended; the notifications' recorder
    # then sees that end and writes the ".end" message in the same flush.
    return (usage_ledger.record, action_events.record, notifications.record)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, flush_context: Any, instances: Any) -> None:
    for record in _recorders():
        record(session)

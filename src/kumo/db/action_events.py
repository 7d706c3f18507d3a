"""The events of an instance action (Nova's ``instance_actions_events``).

An action says what was asked of a server; its events say which parts of the work ran,
where, when, and how each ended (``openstack server event show``). They are written by
the recorder kumo.core.compute.action_events in the flush that opens or ends the action,
so no path that changes a server has to remember them (DESIGN.md 3.8).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kumo.db.base import Base
from kumo.db.models.compute import InstanceAction
from kumo.db.types import UTCDateTime, utcnow

SUCCESS = "Success"  # Nova's two results, spelled as its API shows them
ERROR = "Error"


class InstanceActionEvent(Base):
    """One part of an action's work: open (no finish_time, no result) while it runs."""

    __tablename__ = "instance_action_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("instance_actions.id", ondelete="CASCADE"), index=True
    )
    event: Mapped[str] = mapped_column(String(255))
    start_time: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finish_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(16), nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The name of the host that did the work (Nova's ``host``; its hostId is derived from it
    # and the project when shown, never stored).
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)  # 2.84: the error, short

    # Many-to-one only: the action is inserted first in the same flush (its id is unknown
    # when the recorder adds the event), and InstanceAction knows nothing of its events.
    action: Mapped[InstanceAction] = relationship()

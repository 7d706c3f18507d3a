"""Host failures (high availability): one row per failure of a host, the state machine the
active controller advances (kumo.controller.host_failure), and its events.

The state lives here, not in the controller's memory, so a controller that restarts (or a
standby that takes the lease over) picks each failure up at the step it had reached
(DESIGN.md 3.1). ``servers`` keeps what was done to each server of the host (evacuated,
left down and why), so a step repeated after a crash never acts on a server twice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, Base
from kumo.db.types import UTCDateTime, utcnow

EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")


class HostFailure(Base):
    """A host that stopped answering, from suspicion to its servers' fate."""

    __tablename__ = "host_failures"
    __table_args__ = (Index("ix_host_failures_host_id", "host_id"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    host_id: Mapped[str] = mapped_column(ID, ForeignKey("hosts.id", ondelete="CASCADE"))
    # suspected, fencing, awaiting_self_fence, evacuating, then done / recovered / unfenced
    state: Mapped[str] = mapped_column(String(32))
    # The heartbeat the failure is about: a newer one means the host answered again.
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Whether this failure forced the host down (so a recovery clears only its own flag).
    forced_down_by_us: Mapped[bool] = mapped_column(default=False)
    fence_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The earliest time the next step may run (a self-fence deadline, a fence retry).
    next_step_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    servers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class HostFailureEvent(Base):
    """One step of a host failure, as the operator reads it back (`kumo host failures`)."""

    __tablename__ = "host_failure_events"
    __table_args__ = (Index("ix_host_failure_events_failure_id", "failure_id"),)
    id: Mapped[int] = mapped_column(EVENT_ID, primary_key=True, autoincrement=True)
    failure_id: Mapped[str] = mapped_column(ID, ForeignKey("host_failures.id", ondelete="CASCADE"))
    host_id: Mapped[str] = mapped_column(ID)
    step: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

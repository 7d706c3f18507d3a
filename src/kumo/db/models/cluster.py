"""The cluster's own tables: settings, hosts and their leases, and the wakeup notes that
wake processes when a commit gives them work.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, NAME, Base
from kumo.db.types import UTCDateTime, utcnow


class Setting(Base):
    """Cluster-wide secrets and settings every API copy must share (token keys, ...)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Host(Base):
    """A hypervisor host, keyed by a stable UUID so renaming never rewrites other rows."""

    __tablename__ = "hosts"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Set by an operator (os-services force-down): down whatever the heartbeat says.
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    agent_version: Mapped[str] = mapped_column(String(64), default="")
    agent_api_versions: Mapped[list[str]] = mapped_column(JSON, default=list)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    inventory: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    registered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}


class Lease(Base):
    """Leadership lease: the controller holding an unexpired lease is the active one."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# An id that outlives 2**31 notes on MariaDB; SQLite autoincrements only INTEGER keys.
NOTE_ID = BigInteger().with_variant(Integer(), "sqlite")


class WakeupNote(Base):
    """A batch of wake-ups one process relays to the others where the database has no
    LISTEN/NOTIFY (MariaDB; kumo.db.table_relay). Pruned after a minute."""

    __tablename__ = "wakeup_notes"
    __table_args__ = (Index("ix_wakeup_notes_created_at", "created_at"),)
    id: Mapped[int] = mapped_column(NOTE_ID, primary_key=True, autoincrement=True)
    payload: Mapped[str] = mapped_column(Text)  # "origin topic topic ..."
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WakeupListener(Base):
    """A process that reads ``wakeup_notes``, with its last heartbeat: others write notes
    only while someone listens."""

    __tablename__ = "wakeup_listeners"
    origin: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

"""The usage ledger (DESIGN.md rule 9): one row per interval in which a billable thing had
one shape.

A row is written open (``ended_at`` NULL) in the transaction that gives the thing its
shape, and closed in the transaction that changes or ends it; it is never updated
otherwise and never deleted with its resource, so a report over a past period stays right
after the servers, volumes and addresses it describes are gone. The recorder that writes
it is ``kumo.core.usage_ledger``; this module only holds the table.

The shape columns are a union over the resource types (a server has a flavor, a state
class and a host; a volume a size and a type; a floating IP an address); the columns of
the other types stay NULL or 0.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, Base
from kumo.db.types import UTCDateTime

# What can be billed (``resource_type``).
RESOURCE_TYPES = ("server", "volume", "snapshot", "image", "floating_ip")
# A server's state class: what it holds while in it (kumo.core.usage_ledger decides).
STATE_CLASSES = ("running", "stopped", "shelved")


class UsageInterval(Base):
    __tablename__ = "usage_intervals"
    __table_args__ = (
        # The open interval of a resource, found by every change to it.
        Index("ix_usage_intervals_resource", "resource_id", "ended_at"),
        # Reports: the intervals overlapping a period (started before its end).
        Index("ix_usage_intervals_started", "started_at"),
        Index("ix_usage_intervals_project", "project_id", "started_at"),
    )
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    resource_type: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(ID)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    # Servers: the flavor as it was, the state class and the host.
    flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    flavor_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    disk_gb: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    # Volumes, snapshots, images: GiB (images rounded up); volumes: their type.
    size_gb: Mapped[int] = mapped_column(Integer, default=0)
    volume_type_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    # Floating IPs: the address.
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

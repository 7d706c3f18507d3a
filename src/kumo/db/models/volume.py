"""Cinder's tables: volume types and their access, volumes, attachments, snapshots and
transfers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, NAME, Base
from kumo.db.types import UTCDateTime, utcnow


class VolumeType(Base):
    """A kind of volume: ``extra_specs`` choose the backend (``volume_backend_name``), as in
    Cinder. Private types are visible to the projects in ``volume_type_access``."""

    __tablename__ = "volume_types"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VolumeTypeAccess(Base):
    __tablename__ = "volume_type_access"
    volume_type_id: Mapped[str] = mapped_column(
        ID, ForeignKey("volume_types.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class Volume(Base):
    """A block volume. The API writes the request (``status`` creating/deleting/extending
    with a ``generation``); the agent of ``host_id``, which keeps the data in its
    ``backend``, carries it out and reports (``observed_generation``). Soft-deleted, so
    usage and audit survive (DESIGN.md section 3.7)."""

    __tablename__ = "volumes"
    __table_args__ = (
        Index("ix_volumes_project", "project_id", "deleted"),
        Index("ix_volumes_host", "host_id", "deleted"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str | None] = mapped_column(NAME, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    size: Mapped[int] = mapped_column(Integer)  # GiB
    # The size before an extend, until the agent reports it done (or failed).
    previous_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="creating")
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    volume_type_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    backend: Mapped[str] = mapped_column(String(64), default="file")
    host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    bootable: Mapped[bool] = mapped_column(Boolean, default=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False)
    # Cinder's admin metadata "readonly": None until someone sets it (then shown either way).
    readonly: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # volume_image_metadata: the properties of the image it was made from.
    image_meta: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    # Where its data comes from (at most one); the agent reads it at create time.
    source_image_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    source_volid: Mapped[str | None] = mapped_column(ID, nullable=True)
    # An upload to an image in progress (os-volume_upload_image): the image to fill.
    upload_image_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    migration_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    task_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}


class VolumeAttachment(Base):
    """A volume attached (or being attached) to a server: Cinder's attachment and Nova's
    block device mapping in one row. ``status``: reserved, attaching, attached, detaching,
    error_attaching, error_detaching; a finished detach soft-deletes the row."""

    __tablename__ = "volume_attachments"
    __table_args__ = (
        Index("ix_volume_attachments_volume", "volume_id", "deleted"),
        Index("ix_volume_attachments_instance", "instance_id", "deleted"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(ID)
    instance_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    # The host name a legacy os-attach recorded (Cinder's attached_host).
    host_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="reserved")
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mode: Mapped[str] = mapped_column(String(4), default="rw")
    connector: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Nova's block device mapping: hot-plugged by the compute agent (legacy Cinder-only
    # attachments are bookkeeping, as Cinder's are), the root disk, deleted with the server.
    plugged: Mapped[bool] = mapped_column(Boolean, default=False)
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, default=False)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    attached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detached_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class VolumeSnapshot(Base):
    """A point-in-time copy of a volume, kept by the backend of the volume's host."""

    __tablename__ = "volume_snapshots"
    __table_args__ = (
        Index("ix_volume_snapshots_project", "project_id", "deleted"),
        Index("ix_volume_snapshots_volume", "volume_id", "deleted"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(ID)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    name: Mapped[str | None] = mapped_column(NAME, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32), default="creating")
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    backend: Mapped[str] = mapped_column(String(64), default="file")
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    task_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}


class VolumeTransfer(Base):
    """An offer to give a volume to another project (Cinder's volume transfer): whoever
    presents the id and the auth key, which is stored only hashed, takes it over."""

    __tablename__ = "volume_transfers"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    volume_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)  # the giving project
    name: Mapped[str | None] = mapped_column(NAME, nullable=True)
    salt: Mapped[str] = mapped_column(String(32))
    key_hash: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

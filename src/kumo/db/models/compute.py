"""Nova's tables: flavors, key pairs, instances with their allocations, actions and
migrations, quotas, server groups and aggregates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, NAME, Base
from kumo.db.types import UTCDateTime, utcnow


class Flavor(Base):
    """A server size. ``id`` is Nova's flavorid: any string, often a number or a UUID."""

    __tablename__ = "flavors"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap_mb: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FlavorAccess(Base):
    """Projects allowed to use a private flavor."""

    __tablename__ = "flavor_access"
    flavor_id: Mapped[str] = mapped_column(
        String(255), ForeignKey("flavors.id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)


class KeyPair(Base):
    """An SSH (or x509) public key, owned by one user; names are unique per user."""

    __tablename__ = "keypairs"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_keypairs_user_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(NAME)
    user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str] = mapped_column(ID, default="")
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Instance(Base):
    """A server. Desired state (``desired_state``, ``reboot_kind``, ``generation``) is written
    by the API; observed state (``power_state``, ``vm_state``, ``observed_generation``) is
    reported by the agent of ``host_id``. Rows are soft-deleted so usage survives."""

    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_project", "project_id", "deleted"),
        Index("ix_instances_host", "host_id", "deleted"),
        Index("ix_instances_pending", "vm_state", "task_state"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    project_id: Mapped[str] = mapped_column(ID)
    user_id: Mapped[str] = mapped_column(ID)
    host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    flavor_id: Mapped[str] = mapped_column(String(255))
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The flavor before a resize, until it is confirmed or reverted.
    old_flavor: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    image_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    key_name: Mapped[str | None] = mapped_column(NAME, nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Unused since 0025: a server's tags are rows of instance_tags (server_tag_tables).
    # Still written (the column is NOT NULL) until a contract migration drops it.
    legacy_tags: Mapped[list[str]] = mapped_column("tags", JSON, default=list)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    # The zone asked for ("" for any) until the scheduler places the server, then the zone
    # of the host it was placed on, as Nova's conductor records it; views show the zone of
    # the host it runs on now.
    availability_zone: Mapped[str] = mapped_column(String(255), default="nova")
    # The host an admin forced with ``availability_zone: "az:host"`` (by UUID, rule 6).
    requested_host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    # The server's ports in NIC order: [{"port_id", "preserve", "tag"}]; ``preserve`` for a
    # port the user brought (unbound, not deleted, with the server). None: no NIC.
    nics: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, nullable=True)
    # While shelved: the snapshot of its root disk that unshelve boots from (Nova keeps it
    # as ``shelved_image_id`` in system metadata); the image is deleted once it runs again.
    shelved_image_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    hostname: Mapped[str] = mapped_column(String(255), default="")
    access_ipv4: Mapped[str] = mapped_column(String(64), default="")
    access_ipv6: Mapped[str] = mapped_column(String(64), default="")
    reservation_id: Mapped[str] = mapped_column(String(64), default="")
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    locked_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    vm_state: Mapped[str] = mapped_column(String(32), default="building")
    task_state: Mapped[str | None] = mapped_column(String(64), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    desired_state: Mapped[str] = mapped_column(String(32), default="active")
    reboot_kind: Mapped[str | None] = mapped_column(String(8), nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    observed_generation: Mapped[int] = mapped_column(Integer, default=0)
    task_deadline: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    fault: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    launched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    terminated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}


class Allocation(Base):
    """Resources an instance holds on its host; written with the host assignment, in one
    transaction, so capacity can never be overcommitted (DESIGN.md section 3.4)."""

    __tablename__ = "allocations"
    instance_id: Mapped[str] = mapped_column(ID, primary_key=True)
    host_id: Mapped[str] = mapped_column(ID, index=True)
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstanceAction(Base):
    """What was asked of a server, by whom, and how it ended (os-instance-actions)."""

    __tablename__ = "instance_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(ID, index=True)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ID)
    project_id: Mapped[str] = mapped_column(ID)
    start_time: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finish_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)


class QuotaLimit(Base):
    """A project's limit for one resource; absent means the configured default."""

    __tablename__ = "quota_limits"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(Integer)


class ConsoleLog(Base):
    """The tail of a server's serial console, as its agent last reported it."""

    __tablename__ = "console_logs"
    instance_id: Mapped[str] = mapped_column(ID, primary_key=True)
    content: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServerGroup(Base):
    """A placement policy for a set of servers (affinity, anti-affinity, soft variants)."""

    __tablename__ = "server_groups"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    user_id: Mapped[str] = mapped_column(ID)
    policy: Mapped[str] = mapped_column(String(32))
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ServerGroupMember(Base):
    __tablename__ = "server_group_members"
    group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("server_groups.id", ondelete="CASCADE"), primary_key=True
    )
    instance_id: Mapped[str] = mapped_column(ID, primary_key=True)


class Migration(Base):
    """A move of a server between hosts (Nova's migrations table): live migration now;
    cold migration, resize to another host and evacuation share the row later.

    Hosts are named by UUID (``source_host_id``/``dest_host_id``, DESIGN.md rule 6); the
    names (``source_compute``/``source_node``...) are kept as they were when the move started,
    as Nova shows them. The integer ``id`` is what Nova's API exposes; ``uuid`` is the stable
    identity agents report against. ``dest_endpoint`` is where the destination waits for the
    guest's state (written by its agent); ``source_done``/``dest_done`` record that each agent
    finished its part (cleaned up or resumed), so a restart of either knows what is left."""

    __tablename__ = "migrations"
    __table_args__ = (
        Index("ix_migrations_instance", "instance_uuid", "deleted"),
        Index("ix_migrations_status", "status"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_uuid: Mapped[str] = mapped_column(ID)
    migration_type: Mapped[str] = mapped_column(String(32), default="live-migration")
    status: Mapped[str] = mapped_column(String(32), default="queued")
    source_host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    dest_host_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    source_compute: Mapped[str | None] = mapped_column(NAME, nullable=True)
    source_node: Mapped[str | None] = mapped_column(NAME, nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(NAME, nullable=True)
    dest_node: Mapped[str | None] = mapped_column(NAME, nullable=True)
    dest_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    new_flavor_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    block_migration: Mapped[bool] = mapped_column(Boolean, default=False)
    dest_endpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    force_complete: Mapped[bool] = mapped_column(Boolean, default=False)
    abort_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    source_done: Mapped[bool] = mapped_column(Boolean, default=False)
    dest_done: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    memory_total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_processed_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_remaining_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    disk_total_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    disk_processed_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    disk_remaining_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # What the guest-side measurements said when the move ended (milliseconds).
    total_time_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    downtime_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # When the destination took the server over (the switch), for the downtime it saw.
    switched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(
        UTCDateTime, nullable=True, default=utcnow, onupdate=utcnow
    )
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)


class Aggregate(Base):
    """A host aggregate (Nova's os-aggregates): a named set of hosts with metadata; its
    ``availability_zone`` makes its hosts a zone users can ask for.

    The integer ``id`` is what Nova's API shows. Rows are soft-deleted as Nova does: ``deleted``
    is 0 while live and the row's id once deleted, so (name, deleted) is unique among live
    aggregates on every backend without partial indexes."""

    __tablename__ = "aggregates"
    __table_args__ = (UniqueConstraint("name", "deleted", name="uq_aggregates_name_deleted"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    name: Mapped[str] = mapped_column(NAME)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[int] = mapped_column(Integer, default=0)


class AggregateHost(Base):
    """A host's membership of an aggregate, by host UUID (DESIGN.md rule 6)."""

    __tablename__ = "aggregate_hosts"
    aggregate_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True
    )
    host_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)


class AggregateMetadata(Base):
    """One key of an aggregate's metadata (``availability_zone`` lives on the aggregate)."""

    __tablename__ = "aggregate_metadata"
    aggregate_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("aggregates.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))

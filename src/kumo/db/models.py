"""SQLAlchemy models: the database is the only source of truth (DESIGN.md section 3).

Migrations under ``migrations/versions`` create these tables; a test compares the two so a
model change without a migration fails.
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
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kumo.db.base import ID, NAME, Base
from kumo.db.types import UTCDateTime, utcnow


class Setting(Base):
    """Cluster-wide secrets and settings every API copy must share (token keys, ...)."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Domain(Base):
    __tablename__ = "domains"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_projects_domain_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("domains.id"))
    parent_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_users_domain_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("domains.id"))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    password_created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    default_project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Group(Base):
    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_groups_domain_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, ForeignKey("domains.id"))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupMembership(Base):
    __tablename__ = "group_memberships"
    user_id: Mapped[str] = mapped_column(
        ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )


class Role(Base):
    __tablename__ = "roles"
    # domain_id "" marks a global role: NULL would not take part in the unique constraint.
    __table_args__ = (UniqueConstraint("domain_id", "name", name="uq_roles_domain_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    domain_id: Mapped[str] = mapped_column(ID, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RoleAssignment(Base):
    """One grant: actor (user or group) has role on target (project or domain)."""

    __tablename__ = "role_assignments"
    __table_args__ = (
        Index("ix_role_assignments_target", "target_id"),
        Index("ix_role_assignments_role", "role_id"),
    )
    actor_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # user | group
    actor_id: Mapped[str] = mapped_column(ID, primary_key=True)
    target_type: Mapped[str] = mapped_column(String(16), primary_key=True)  # project | domain
    target_id: Mapped[str] = mapped_column(ID, primary_key=True)
    role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    inherited: Mapped[bool] = mapped_column(Boolean, primary_key=True, default=False)


class ApplicationCredential(Base):
    __tablename__ = "application_credentials"
    __table_args__ = (UniqueConstraint("user_id", "name", name="uq_app_creds_user_name"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str] = mapped_column(ID)
    secret_hash: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unrestricted: Mapped[bool] = mapped_column(Boolean, default=False)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    access_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class RevocationEvent(Base):
    """Tokens matching every non-null field and issued at or before issued_before are revoked."""

    __tablename__ = "revocation_events"
    __table_args__ = (
        Index("ix_revocation_events_audit_id", "audit_id"),
        Index("ix_revocation_events_user_id", "user_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audit_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    app_cred_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    issued_before: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Tokens expire, so an event older than the longest token lifetime can be purged.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


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


class Region(Base):
    __tablename__ = "regions"
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)


class Service(Base):
    __tablename__ = "services"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Endpoint(Base):
    __tablename__ = "endpoints"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    service_id: Mapped[str] = mapped_column(ID, ForeignKey("services.id", ondelete="CASCADE"))
    interface: Mapped[str] = mapped_column(String(16))
    region_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    url: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Credential(Base):
    """Keystone's /v3/credentials: opaque blobs (EC2 keys, TOTP secrets) stored per user."""

    __tablename__ = "credentials"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, ForeignKey("users.id", ondelete="CASCADE"))
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Policy(Base):
    """Keystone's /v3/policies: opaque policy blobs kept for clients that store them."""

    __tablename__ = "policies"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    type: Mapped[str] = mapped_column(String(255))
    blob: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Trust(Base):
    """OS-TRUST delegation: the trustee may act with some of the trustor's project roles."""

    __tablename__ = "trusts"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    trustor_user_id: Mapped[str] = mapped_column(ID, index=True)
    trustee_user_id: Mapped[str] = mapped_column(ID, index=True)
    project_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    impersonation: Mapped[bool] = mapped_column(Boolean, default=False)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    remaining_uses: Mapped[int | None] = mapped_column(Integer, nullable=True)
    role_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ImpliedRole(Base):
    """Role inference rule: holding the prior role also grants the implied one."""

    __tablename__ = "implied_roles"
    prior_role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    implied_role_id: Mapped[str] = mapped_column(
        ID, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )


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


class Image(Base):
    """A Glance v2 image: metadata here, data in the image store (STATE_DIR/images/<id>).

    Deleting marks the row (status ``deleted``, ``deleted_at``) so usage and audit survive.
    """

    __tablename__ = "images"
    __table_args__ = (
        Index("ix_images_owner", "owner"),
        Index("ix_images_visibility", "visibility"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(NAME, nullable=True)
    owner: Mapped[str | None] = mapped_column(ID, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    visibility: Mapped[str] = mapped_column(String(16), default="shared")
    protected: Mapped[bool] = mapped_column(Boolean, default=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    disk_format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    container_format: Mapped[str | None] = mapped_column(String(32), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_hash_algo: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_hash_value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    min_disk: Mapped[int] = mapped_column(Integer, default=0)
    min_ram: Mapped[int] = mapped_column(Integer, default=0)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    locations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    __mapper_args__ = {"version_id_col": version}
    # Loaded with the image (one extra SELECT per query, not per row): every view shows tags.
    tag_rows: Mapped[list[ImageTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="ImageTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]


class ImageTag(Base):
    """One tag on an image (a table, not a JSON list, so ``?tag=`` filters in SQL)."""

    __tablename__ = "image_tags"
    image_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(NAME, primary_key=True)


class ImageMember(Base):
    """A project a shared image is offered to; the member accepts or rejects it."""

    __tablename__ = "image_members"
    __table_args__ = (Index("ix_image_members_member", "member"),)
    image_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    member: Mapped[str] = mapped_column(ID, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


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


# --- Networking (Neutron v2.0). Every resource carries Neutron's standard attributes:
# description, revision_number (bumped by each change: the desired-state generation the
# agents compare with), created_at, updated_at. Tags of every kind live in network_tags.


class Network(Base):
    """A virtual network. Its provider type decides the datapath (the driver belongs to the
    network, as OpenNebula 5 put it); ``segment_key`` makes a segment (type, physical network,
    segmentation id) unique so two networks can never share a VLAN or a VNI."""

    __tablename__ = "networks"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer, default=1500)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    segment_key: Mapped[str | None] = mapped_column(String(128), nullable=True, unique=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SubnetPool(Base):
    """A pool of prefixes subnets can be carved from (Neutron's subnetpools)."""

    __tablename__ = "subnetpools"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    prefixes: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_prefixlen: Mapped[int] = mapped_column(Integer)
    min_prefixlen: Mapped[int] = mapped_column(Integer)
    max_prefixlen: Mapped[int] = mapped_column(Integer)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    address_scope_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subnet(Base):
    """An IPv4 or IPv6 range on a network; addresses are handed out from its allocation
    pools (IPAM) as rows of ip_allocations."""

    __tablename__ = "subnets"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_nameservers: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("subnetpools.id"), nullable=True, index=True
    )
    service_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Port(Base):
    """A virtual NIC on a network. ``binding_host_id`` (a host UUID) follows the instance
    the port is plugged into; ``status`` is what that host's agent observed."""

    __tablename__ = "ports"
    __table_args__ = (
        UniqueConstraint("network_id", "mac_address", name="uq_ports_network_mac"),
        Index("ix_ports_device", "device_id"),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    mac_address: Mapped[str] = mapped_column(String(32))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    binding_host_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    binding_vnic_type: Mapped[str] = mapped_column(String(32), default="normal")
    binding_vif_type: Mapped[str] = mapped_column(String(32), default="unbound")
    binding_vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Why the last binding failed (the host cannot carry this network type), for the fault.
    binding_fault: Mapped[str | None] = mapped_column(Text, nullable=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    extra_dhcp_opts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    dns_name: Mapped[str] = mapped_column(String(255), default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class IPAllocation(Base):
    """One fixed IP of a port. The primary key (subnet, address) is what makes IPAM safe:
    two concurrent requests for one address cannot both commit."""

    __tablename__ = "ip_allocations"
    subnet_id: Mapped[str] = mapped_column(
        ID, ForeignKey("subnets.id", ondelete="CASCADE"), primary_key=True
    )
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    network_id: Mapped[str] = mapped_column(ID, index=True)


class SecurityGroup(Base):
    """A set of allow rules applied to ports (stateful by default)."""

    __tablename__ = "security_groups"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class DefaultSecurityGroup(Base):
    """Which group is a project's ``default``: the primary key lets exactly one of two
    racing first requests create it (Neutron keeps the same table)."""

    __tablename__ = "default_security_groups"
    project_id: Mapped[str] = mapped_column(ID, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE")
    )


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[str] = mapped_column(ID, index=True)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8), default="IPv4")
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=True, index=True
    )
    remote_address_group_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PortSecurityGroup(Base):
    __tablename__ = "port_security_groups"
    port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("security_groups.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Router(Base):
    """A router: interfaces are ports (device_owner ``network:router_interface``), the
    external gateway a port on an external network (``gw_port_id``). ``host_id`` is the
    agent whose namespace carries it."""

    __tablename__ = "routers"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="SET NULL"), nullable=True
    )
    external_network_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    routes: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    availability_zone_hints: Mapped[list[str]] = mapped_column(JSON, default=list)
    host_id: Mapped[str | None] = mapped_column(ID, nullable=True, index=True)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class FloatingIP(Base):
    """A public address: its own port on the external network (``floating_port_id``, which
    holds the address in ip_allocations), mapped 1:1 onto a fixed IP of ``port_id``."""

    __tablename__ = "floating_ips"
    # One floating IP per fixed IP and external network, also between racing requests.
    __table_args__ = (
        Index(
            "uq_floating_ips_fixed",
            "floating_network_id",
            "port_id",
            "fixed_ip_address",
            unique=True,
        ),
    )
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(ID, index=True)
    floating_network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("networks.id", ondelete="CASCADE"), index=True
    )
    floating_port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="CASCADE"), unique=True
    )
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    port_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("ports.id", ondelete="SET NULL"), nullable=True, index=True
    )
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("routers.id", ondelete="SET NULL"), nullable=True, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    description: Mapped[str] = mapped_column(Text, default="")
    revision_number: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class NetworkTag(Base):
    """A tag on any networking resource (``resource_type`` is Neutron's collection name)."""

    __tablename__ = "network_tags"
    resource_type: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


# --- block storage (Cinder v3) -----------------------------------------------------------


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


# Tables of their own subject live in their own modules; importing them here puts them in
# Base.metadata for everything that reads it (alembic's env, create_all, the tests' wipe).
from kumo.db import action_events as _action_events  # noqa: E402, F401
from kumo.db import console_tables as _console_tables  # noqa: E402, F401
from kumo.db import ha_tables as _ha_tables  # noqa: E402, F401
from kumo.db import outbox_tables as _outbox_tables  # noqa: E402, F401
from kumo.db import server_tag_tables as _server_tag_tables  # noqa: E402, F401
from kumo.db import usage_tables as _usage_tables  # noqa: E402, F401

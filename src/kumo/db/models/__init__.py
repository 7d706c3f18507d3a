"""SQLAlchemy models: the database is the only source of truth (DESIGN.md section 3).

One module per domain; this package re-exports every model so ``from kumo.db import models
as m`` and ``m.Instance`` keep working. Migrations under ``kumo/db/migrations/versions``
create these tables; a test compares the two so a model change without a migration fails.
"""

from __future__ import annotations

from kumo.db.base import Base
from kumo.db.models.cluster import (
    NOTE_ID,
    Host,
    Lease,
    Setting,
    WakeupListener,
    WakeupNote,
)
from kumo.db.models.compute import (
    Aggregate,
    AggregateHost,
    AggregateMetadata,
    Allocation,
    ConsoleLog,
    Flavor,
    FlavorAccess,
    Instance,
    InstanceAction,
    KeyPair,
    Migration,
    QuotaLimit,
    ServerGroup,
    ServerGroupMember,
)
from kumo.db.models.identity import (
    ApplicationCredential,
    Credential,
    Domain,
    Endpoint,
    Group,
    GroupMembership,
    ImpliedRole,
    Policy,
    Project,
    Region,
    RevocationEvent,
    Role,
    RoleAssignment,
    Service,
    Trust,
    User,
)
from kumo.db.models.image import (
    Image,
    ImageMember,
    ImageTag,
)
from kumo.db.models.network import (
    DefaultSecurityGroup,
    FloatingIP,
    IPAllocation,
    Network,
    NetworkTag,
    Port,
    PortSecurityGroup,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
    SubnetPool,
)
from kumo.db.models.volume import (
    Volume,
    VolumeAttachment,
    VolumeSnapshot,
    VolumeTransfer,
    VolumeType,
    VolumeTypeAccess,
)

# isort: split
# Tables of their own subject live in their own modules; importing them here puts them in
# Base.metadata for everything that reads it (alembic's env, create_all, the tests' wipe).
from kumo.db import action_events as _action_events  # noqa: F401
from kumo.db import console_tables as _console_tables  # noqa: F401
from kumo.db import ha_tables as _ha_tables  # noqa: F401
from kumo.db import outbox_tables as _outbox_tables  # noqa: F401
from kumo.db import server_tag_tables as _server_tag_tables  # noqa: F401
from kumo.db import usage_tables as _usage_tables  # noqa: F401

__all__ = [
    "NOTE_ID",
    "Aggregate",
    "AggregateHost",
    "AggregateMetadata",
    "Allocation",
    "ApplicationCredential",
    "Base",
    "ConsoleLog",
    "Credential",
    "DefaultSecurityGroup",
    "Domain",
    "Endpoint",
    "Flavor",
    "FlavorAccess",
    "FloatingIP",
    "Group",
    "GroupMembership",
    "Host",
    "IPAllocation",
    "Image",
    "ImageMember",
    "ImageTag",
    "ImpliedRole",
    "Instance",
    "InstanceAction",
    "KeyPair",
    "Lease",
    "Migration",
    "Network",
    "NetworkTag",
    "Policy",
    "Port",
    "PortSecurityGroup",
    "Project",
    "QuotaLimit",
    "Region",
    "RevocationEvent",
    "Role",
    "RoleAssignment",
    "Router",
    "SecurityGroup",
    "SecurityGroupRule",
    "ServerGroup",
    "ServerGroupMember",
    "Service",
    "Setting",
    "Subnet",
    "SubnetPool",
    "Trust",
    "User",
    "Volume",
    "VolumeAttachment",
    "VolumeSnapshot",
    "VolumeTransfer",
    "VolumeType",
    "VolumeTypeAccess",
    "WakeupListener",
    "WakeupNote",
]

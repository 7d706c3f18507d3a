"""Block storage: volume types (and their access lists), volumes, volume attachments and
volume snapshots.

New tables only, which old code never reads: an expand step.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None
PHASE = "expand"

ID = sa.String(64)


def _times() -> list[sa.Column]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _deleted() -> list[sa.Column]:
    return [
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    ]


def _request() -> list[sa.Column]:
    """What the agent of the host carries out: generation, deadline, why it failed."""
    return [
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("observed_generation", sa.Integer(), nullable=False),
        sa.Column("task_deadline", UTCDateTime(), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "volume_types",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("extra_specs", sa.JSON(), nullable=False),
        *_times(),
    )
    op.create_table(
        "volume_type_access",
        sa.Column(
            "volume_type_id",
            ID,
            sa.ForeignKey("volume_types.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("project_id", ID, primary_key=True),
    )
    op.create_table(
        "volumes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("previous_size", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("availability_zone", sa.String(255), nullable=False),
        sa.Column("volume_type_id", ID, nullable=True),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("host_id", ID, nullable=True),
        sa.Column("bootable", sa.Boolean(), nullable=False),
        sa.Column("multiattach", sa.Boolean(), nullable=False),
        sa.Column("readonly", sa.Boolean(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("image_meta", sa.JSON(), nullable=True),
        sa.Column("source_image_id", ID, nullable=True),
        sa.Column("snapshot_id", ID, nullable=True),
        sa.Column("source_volid", ID, nullable=True),
        sa.Column("upload_image_id", ID, nullable=True),
        sa.Column("migration_status", sa.String(32), nullable=True),
        *_request(),
        *_times(),
        *_deleted(),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_volumes_project", "volumes", ["project_id", "deleted"])
    op.create_index("ix_volumes_host", "volumes", ["host_id", "deleted"])
    op.create_table(
        "volume_attachments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("volume_id", ID, nullable=False),
        sa.Column("instance_id", ID, nullable=True),
        sa.Column("host_name", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("mountpoint", sa.String(255), nullable=True),
        sa.Column("mode", sa.String(4), nullable=False),
        sa.Column("connector", sa.JSON(), nullable=True),
        sa.Column("plugged", sa.Boolean(), nullable=False),
        sa.Column("boot_index", sa.Integer(), nullable=True),
        sa.Column("delete_on_termination", sa.Boolean(), nullable=False),
        sa.Column("tag", sa.String(255), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("attached_at", UTCDateTime(), nullable=True),
        sa.Column("detached_at", UTCDateTime(), nullable=True),
        *_times(),
        *_deleted(),
    )
    op.create_index("ix_volume_attachments_volume", "volume_attachments", ["volume_id", "deleted"])
    op.create_index(
        "ix_volume_attachments_instance", "volume_attachments", ["instance_id", "deleted"]
    )
    op.create_table(
        "volume_snapshots",
        sa.Column("id", ID, primary_key=True),
        sa.Column("volume_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("host_id", ID, nullable=True),
        sa.Column("backend", sa.String(64), nullable=False),
        *_request(),
        *_times(),
        *_deleted(),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    op.create_index("ix_volume_snapshots_project", "volume_snapshots", ["project_id", "deleted"])
    op.create_index("ix_volume_snapshots_volume", "volume_snapshots", ["volume_id", "deleted"])

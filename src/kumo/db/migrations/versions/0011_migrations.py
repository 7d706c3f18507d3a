"""Migrations of servers between hosts (live migration first; Nova's os-migrations).

A new table: old code never reads it, so this is an expand step.

Revision ID: 0011
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "migrations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("instance_uuid", sa.String(length=64), nullable=False),
        sa.Column("migration_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source_host_id", sa.String(length=64), nullable=True),
        sa.Column("dest_host_id", sa.String(length=64), nullable=True),
        sa.Column("source_compute", sa.String(length=255), nullable=True),
        sa.Column("source_node", sa.String(length=255), nullable=True),
        sa.Column("dest_compute", sa.String(length=255), nullable=True),
        sa.Column("dest_node", sa.String(length=255), nullable=True),
        sa.Column("dest_host", sa.String(length=255), nullable=True),
        sa.Column("old_flavor_id", sa.String(length=255), nullable=True),
        sa.Column("new_flavor_id", sa.String(length=255), nullable=True),
        sa.Column("block_migration", sa.Boolean(), nullable=False),
        sa.Column("dest_endpoint", sa.JSON(), nullable=True),
        sa.Column("force_complete", sa.Boolean(), nullable=False),
        sa.Column("abort_requested", sa.Boolean(), nullable=False),
        sa.Column("source_done", sa.Boolean(), nullable=False),
        sa.Column("dest_done", sa.Boolean(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("memory_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_processed_bytes", sa.BigInteger(), nullable=True),
        sa.Column("memory_remaining_bytes", sa.BigInteger(), nullable=True),
        sa.Column("disk_total_bytes", sa.BigInteger(), nullable=True),
        sa.Column("disk_processed_bytes", sa.BigInteger(), nullable=True),
        sa.Column("disk_remaining_bytes", sa.BigInteger(), nullable=True),
        sa.Column("total_time_ms", sa.Integer(), nullable=True),
        sa.Column("downtime_ms", sa.Integer(), nullable=True),
        sa.Column("switched_at", UTCDateTime(), nullable=True),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uuid"),
    )
    with op.batch_alter_table("migrations", schema=None) as batch_op:
        batch_op.create_index("ix_migrations_instance", ["instance_uuid", "deleted"], unique=False)
        batch_op.create_index("ix_migrations_status", ["status"], unique=False)

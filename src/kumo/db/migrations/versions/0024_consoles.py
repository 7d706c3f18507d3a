"""Remote consoles: each guest's console endpoints (``console_endpoints``) and the
single-use tokens that open them (``console_auth_tokens``).

Two new tables old code never reads: an expand step.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "console_endpoints",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("host_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("vnc_port", sa.Integer(), nullable=True),
        sa.Column("serial_port", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("instance_id"),
    )
    op.create_table(
        "console_auth_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("console_type", sa.String(length=32), nullable=False),
        sa.Column("host_id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_console_auth_tokens_instance_id", "console_auth_tokens", ["instance_id"])
    op.create_index("ix_console_auth_tokens_expires_at", "console_auth_tokens", ["expires_at"])

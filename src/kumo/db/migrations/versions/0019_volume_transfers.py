"""Volume transfers between projects (``volume_transfers``).

A new table: an expand step.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "volume_transfers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("volume_id", sa.String(64), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("salt", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_volume_transfers_volume_id", "volume_transfers", ["volume_id"])
    op.create_index("ix_volume_transfers_project_id", "volume_transfers", ["project_id"])

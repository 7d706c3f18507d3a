"""Resize: instances keep their previous flavor until the resize is confirmed or reverted.

A nullable column: old code ignores it, so this is an expand step.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("old_flavor", sa.JSON(), nullable=True))

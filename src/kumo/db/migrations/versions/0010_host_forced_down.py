"""Hosts can be forced down (compute API 2.11, ``PUT /os-services/force-down``).

An operator who has fenced a host says so; until the flag is cleared the host counts as
down whatever its heartbeat says (no new placements, shown as down). A boolean column with
a server default of false: old code neither reads nor writes it, so this is an expand step.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("forced_down", sa.Boolean(), nullable=False, server_default=sa.false())
        )

"""A server's ports in NIC order (``instances.nics``), for the network service.

One nullable column: old code neither reads nor writes it (None means no NIC), so this is
an expand step.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nics", sa.JSON(), nullable=True))

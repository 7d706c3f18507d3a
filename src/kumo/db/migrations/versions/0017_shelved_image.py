"""The snapshot a shelved server boots from when unshelved (``instances.shelved_image_id``).

One nullable column that old code neither reads nor writes: an expand step.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shelved_image_id", sa.String(64), nullable=True))

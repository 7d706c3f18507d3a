"""Each guest's display device next to its console endpoints (``console_endpoints.display``),
as its agent reports it, for a live migration's destination to start the guest with.

A nullable column old code never reads: an expand step. Rows written before it say NULL:
reported by an agent older than displays, whose guests have none.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    with op.batch_alter_table("console_endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("display", sa.String(length=16), nullable=True))

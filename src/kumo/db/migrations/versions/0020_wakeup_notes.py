"""Wake-ups relayed between processes on MariaDB (``wakeup_notes``, ``wakeup_listeners``).

PostgreSQL relays them by LISTEN/NOTIFY; MariaDB has no such thing, so the processes write
and poll a small table. Two new tables that old code never reads: an expand step.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "wakeup_notes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_wakeup_notes_created_at", "wakeup_notes", ["created_at"])
    op.create_table(
        "wakeup_listeners",
        sa.Column("origin", sa.String(32), primary_key=True),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
    )

"""Host failures (``host_failures``, ``host_failure_events``): the high-availability state
machine the controller advances, kept in the database so it resumes after a restart.

New tables old code never reads: an expand step.

Revision ID: 0027
Revises: 0026
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "host_failures",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "host_id", sa.String(64), sa.ForeignKey("hosts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("last_heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("forced_down_by_us", sa.Boolean(), nullable=False),
        sa.Column("fence_attempts", sa.Integer(), nullable=False),
        sa.Column("next_step_at", UTCDateTime(), nullable=True),
        sa.Column("servers", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_host_failures_host_id", "host_failures", ["host_id"])
    op.create_table(
        "host_failure_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column(
            "failure_id",
            sa.String(64),
            sa.ForeignKey("host_failures.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("host_id", sa.String(64), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_host_failure_events_failure_id", "host_failure_events", ["failure_id"])

"""The events of instance actions (``instance_action_events``), as Nova's
``instance_actions_events``: a new table that old code never reads, an expand step.

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_table(
        "instance_action_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "action_id",
            sa.Integer(),
            sa.ForeignKey("instance_actions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event", sa.String(255), nullable=False),
        sa.Column("start_time", UTCDateTime(), nullable=False),
        sa.Column("finish_time", UTCDateTime(), nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("host", sa.String(255), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
    )
    op.create_index("ix_instance_action_events_action_id", "instance_action_events", ["action_id"])

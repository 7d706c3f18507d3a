"""Server tags (``instance_tags``): one row per tag on a server, for compute 2.26.

A new table old code never reads: an expand step. The tags an instance row already lists
in its JSON ``tags`` column (no API wrote any before this table; a hand-edited row may)
are copied over, each distinct non-empty string once; the column itself stays until a
contract migration drops it.

Revision ID: 0025
Revises: 0024
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None
PHASE = "expand"

MAX_TAG_LENGTH = 60
TAG = sa.String(MAX_TAG_LENGTH).with_variant(
    mysql.VARCHAR(MAX_TAG_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


def upgrade() -> None:
    tags = op.create_table(
        "instance_tags",
        sa.Column(
            "instance_id",
            sa.String(length=64),
            sa.ForeignKey("instances.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tag", TAG, nullable=False),
        sa.PrimaryKeyConstraint("instance_id", "tag"),
    )
    op.create_index("ix_instance_tags_tag", "instance_tags", ["tag"])
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, tags FROM instances")).all()
    copied = [
        {"instance_id": instance_id, "tag": tag}
        for instance_id, value in rows
        for tag in _tags(value)
    ]
    if copied:
        op.bulk_insert(tags, copied)


def _tags(value: Any) -> list[str]:
    """The distinct tags of one JSON ``tags`` value that fit the new column."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if not isinstance(value, list):
        return []
    found: list[str] = []
    for tag in value:
        if isinstance(tag, str) and 0 < len(tag) <= MAX_TAG_LENGTH and tag not in found:
            found.append(tag)
    return found

"""Role inference rules in the database (Keystone's implied roles).

Until now admin -> member -> reader was fixed in code. The rules become rows, and existing
clouds get exactly the rules they behaved by: derived from the roles present, no question
asked.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None
PHASE = "expand"

DEFAULT_RULES = (("admin", "member"), ("member", "reader"))


def upgrade() -> None:
    op.create_table(
        "implied_roles",
        sa.Column("prior_role_id", sa.String(length=64), nullable=False),
        sa.Column("implied_role_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["implied_role_id"], ["roles.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["prior_role_id"], ["roles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("prior_role_id", "implied_role_id"),
    )
    conn = op.get_bind()
    roles = sa.table("roles", sa.column("id"), sa.column("name"), sa.column("domain_id"))
    ids = {
        name: ident
        for ident, name in conn.execute(
            sa.select(roles.c.id, roles.c.name).where(roles.c.domain_id == "")
        )
    }
    implied = sa.table("implied_roles", sa.column("prior_role_id"), sa.column("implied_role_id"))
    rows = [
        {"prior_role_id": ids[prior], "implied_role_id": ids[after]}
        for prior, after in DEFAULT_RULES
        if prior in ids and after in ids
    ]
    if rows:
        op.bulk_insert(implied, rows)

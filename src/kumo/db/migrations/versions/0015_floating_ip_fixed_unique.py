"""One floating IP per fixed IP and external network (as Neutron's unique constraint).

A unique index over (floating_network_id, port_id, fixed_ip_address): two racing
associations of one fixed IP cannot both commit. Unassociated floating IPs (NULL port and
address) are not constrained. Old code never creates such duplicates (it checks first), so
this is an expand step.

Revision ID: 0015
Revises: 0013
"""

from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None
PHASE = "expand"


def upgrade() -> None:
    op.create_index(
        "uq_floating_ips_fixed",
        "floating_ips",
        ["floating_network_id", "port_id", "fixed_ip_address"],
        unique=True,
    )

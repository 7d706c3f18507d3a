"""The usage ledger (``usage_intervals``), seeded with one open interval per live billable
resource, so an upgraded cloud bills from the upgrade on exactly as a new one does.

A new table old code never reads: an expand step. The seed is a frozen copy of the rules of
``kumo.core.usage_ledger`` as they were at this revision (a migration must not change
meaning when core does later, and db does not import core).

What happened before the upgrade is known only as os-simple-tenant-usage knew it: each
server's launch and termination, with its flavor now. So every launched server also gets one
closed interval from its launch to its termination (or to the upgrade) with its flavor and
no state class (NULL: unknown). os-simple-tenant-usage, which counts every state, gives the
same numbers for past periods as before the upgrade; the usage report, which bills by state
class, counts servers from the upgrade on.

Revision ID: 0022
Revises: 0021
"""

import math
from typing import Any

import sqlalchemy as sa
from alembic import op

from kumo.db.types import UTCDateTime, utcnow

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None
PHASE = "expand"

ID = sa.String(64)
RUNNING = ("active", "paused", "suspended", "rescued")
HELD = ("stopped", "shelved", "soft-delete")


def _state_class(vm_state: str, host_id: str | None, desired: str) -> str | None:
    if vm_state == "resized":
        return "stopped" if desired == "stopped" else "running"
    if vm_state in RUNNING:
        return "running"
    if vm_state in HELD or (vm_state == "error" and host_id is not None):
        return "stopped"
    if vm_state == "shelved_offloaded":
        return "shelved"
    return None


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        import json

        value = json.loads(value)
    return value or {}


def _server_interval(
    base: dict[str, Any], server: sa.RowMapping, flavor: dict[str, Any], **fields: Any
) -> dict[str, Any]:
    """A server's interval row: its project, user and flavor's size, then ``fields`` (the
    closed one of its past and the open one of its present differ only in those)."""
    return {
        **base,
        "resource_type": "server",
        "resource_id": server["id"],
        "project_id": server["project_id"],
        "user_id": server["user_id"],
        "flavor_id": str(flavor.get("id", server["flavor_id"])),
        "flavor_name": str(flavor.get("name", server["flavor_id"])),
        "vcpus": int(flavor.get("vcpus", 0)),
        "memory_mb": int(flavor.get("ram", 0)),
        "disk_gb": int(flavor.get("disk", 0)) + int(flavor.get("ephemeral", 0)),
        **fields,
    }


def _seed(conn: sa.Connection, table: sa.Table) -> None:
    now = utcnow()
    rows: list[dict[str, Any]] = []
    # Every row names every column (one multi-row INSERT).
    base: dict[str, Any] = {
        **dict.fromkeys(("user_id", "flavor_id", "flavor_name", "state", "host_id")),
        **dict.fromkeys(("volume_type_id", "address", "ended_at")),
        **{"vcpus": 0, "memory_mb": 0, "disk_gb": 0, "size_gb": 0, "started_at": now},
    }
    for r in conn.execute(
        sa.text(
            "SELECT id, project_id, user_id, host_id, flavor_id, flavor, old_flavor, vm_state, "
            "desired_state, deleted, launched_at, terminated_at FROM instances"
        ).columns(deleted=sa.Boolean(), launched_at=UTCDateTime(), terminated_at=UTCDateTime())
    ).mappings():
        flavor = _json(r["old_flavor"]) or _json(r["flavor"])
        launched, ended = r["launched_at"], r["terminated_at"] if r["deleted"] else now
        if launched is not None and ended is not None and launched < min(ended, now):
            rows.append(
                _server_interval(base, r, flavor, started_at=launched, ended_at=min(ended, now))
            )
        state = _state_class(r["vm_state"], r["host_id"], r["desired_state"])
        if state is None or r["deleted"]:
            continue
        host_id = r["host_id"] if state != "shelved" else None
        rows.append(_server_interval(base, r, flavor, state=state, host_id=host_id))
    for r in conn.execute(
        sa.text(
            "SELECT id, project_id, user_id, size, volume_type_id FROM volumes "
            "WHERE deleted = :f AND status NOT IN ('error', 'deleted')"
        ),
        {"f": False},
    ).mappings():
        rows.append(
            {
                **base,
                "resource_type": "volume",
                "resource_id": r["id"],
                "project_id": r["project_id"],
                "user_id": r["user_id"],
                "size_gb": int(r["size"]),
                "volume_type_id": r["volume_type_id"],
            }
        )
    for r in conn.execute(
        sa.text(
            "SELECT id, project_id, user_id, size FROM volume_snapshots "
            "WHERE deleted = :f AND status NOT IN ('error', 'deleted')"
        ),
        {"f": False},
    ).mappings():
        rows.append(
            {
                **base,
                "resource_type": "snapshot",
                "resource_id": r["id"],
                "project_id": r["project_id"],
                "user_id": r["user_id"],
                "size_gb": int(r["size"]),
            }
        )
    for r in conn.execute(
        sa.text("SELECT id, owner, size FROM images WHERE status = 'active' AND owner IS NOT NULL")
    ).mappings():
        rows.append(
            {
                **base,
                "resource_type": "image",
                "resource_id": r["id"],
                "project_id": r["owner"],
                "size_gb": math.ceil((r["size"] or 0) / 1024**3),
            }
        )
    for r in conn.execute(
        sa.text("SELECT id, project_id, floating_ip_address FROM floating_ips")
    ).mappings():
        rows.append(
            {
                **base,
                "resource_type": "floating_ip",
                "resource_id": r["id"],
                "project_id": r["project_id"],
                "address": r["floating_ip_address"],
            }
        )
    rows = [r for r in rows if r["project_id"]]
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    table = op.create_table(
        "usage_intervals",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("flavor_id", sa.String(255), nullable=True),
        sa.Column("flavor_name", sa.String(255), nullable=True),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("disk_gb", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=True),
        sa.Column("host_id", ID, nullable=True),
        sa.Column("size_gb", sa.Integer(), nullable=False),
        sa.Column("volume_type_id", ID, nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_usage_intervals_resource", "usage_intervals", ["resource_id", "ended_at"])
    op.create_index("ix_usage_intervals_started", "usage_intervals", ["started_at"])
    op.create_index("ix_usage_intervals_project", "usage_intervals", ["project_id", "started_at"])
    assert table is not None
    _seed(op.get_bind(), table)

"""The controller's side of stuck tasks: servers each through the lifecycle (recorded,
their agents woken), then volumes and snapshots in one transaction."""

from __future__ import annotations

from kumo.core.compute import stuck as compute_stuck
from kumo.core.volume import stuck as volume_stuck
from kumo.db.engine import Database


def resolve_stuck(db: Database) -> int:
    """Servers, then volumes and snapshots, whose request passed its deadline."""
    resolved = compute_stuck.resolve_all(db)
    with db.session() as session:
        return resolved + volume_stuck.resolve_in_session(session)

"""The controller's side of stuck tasks: one transaction per pass."""

from __future__ import annotations

from kumo.core.compute.stuck import resolve_in_session
from kumo.core.volume import stuck as volume_stuck
from kumo.db.engine import Database


def resolve_stuck(db: Database) -> int:
    """Servers, then volumes and snapshots, whose request passed its deadline."""
    with db.session() as session:
        return resolve_in_session(session) + volume_stuck.resolve_in_session(session)

"""The controller's side of stuck tasks: one transaction per pass."""

from __future__ import annotations

from kumo.core.compute.stuck import resolve_in_session
from kumo.db.engine import Database


def resolve_stuck(db: Database) -> int:
    with db.session() as session:
        return resolve_in_session(session)

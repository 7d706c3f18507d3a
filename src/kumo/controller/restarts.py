"""The controller's side of guest restart (kumo.core.compute.guest_restart): each server
whose guest exited unexpectedly, through the lifecycle (its agent woken when asked to
start it), at every tick, so a back-off that ends is acted on within a tick."""

from __future__ import annotations

import logging

from kumo.config import SchedulerConfig
from kumo.core import operations
from kumo.core.compute import guest_restart
from kumo.core.operations import Env
from kumo.core.policy import SERVICE
from kumo.db.engine import Database

log = logging.getLogger(__name__)


def restart_crashed(db: Database, env: Env | None = None) -> int:
    """Restart (or put in ERROR, past the budget) the guests due; how many changed."""
    with db.session() as session:
        ids = guest_restart.crashed_servers(session)
    env = env or Env(SchedulerConfig(), 0.0)
    changed = 0
    for server_id in ids:
        request = guest_restart.CrashedGuest(server_id)
        if operations.run(db, SERVICE, guest_restart.RESTART, request, env).value:
            log.warning("server %s: its guest exited unexpectedly; restart handled", server_id)
            changed += 1
    return changed

"""The controller loop: hold the lease, then run each periodic task when it is due."""

from __future__ import annotations

import logging
import os
import socket
import threading

from kumo.controller.lease import release, try_acquire
from kumo.core.identity.revocation import purge_expired
from kumo.db.engine import Database

log = logging.getLogger(__name__)


class Controller:
    def __init__(self, db: Database, interval: float = 5.0, lease_ttl: float = 20.0) -> None:
        self.db = db
        self.interval = interval
        self.lease_ttl = lease_ttl
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.active = False

    def tick(self) -> None:
        active = try_acquire(self.db, self.holder, self.lease_ttl)
        if active != self.active:
            log.info("controller %s is now %s", self.holder, "active" if active else "standby")
        self.active = active
        if not active:
            return
        with self.db.session() as session:
            purged = purge_expired(session)
        if purged:
            log.info("purged %d expired token revocation events", purged)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a loop that dies silently is worse than a logged error
                log.exception("controller tick failed; retrying")
            stop.wait(self.interval)
        if self.active:
            release(self.db, self.holder)

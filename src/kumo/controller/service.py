"""The controller loop: hold the lease; while active, place new servers as soon as they are
asked for, and run the periodic tasks when due."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from kumo.config import Config
from kumo.controller import metrics
from kumo.controller.host_failure import HostFailures
from kumo.controller.lease import release, try_acquire
from kumo.controller.outbox import Publisher
from kumo.controller.restarts import restart_crashed
from kumo.controller.scheduler import schedule_pending
from kumo.controller.stuck import resolve_stuck
from kumo.core import wakeup
from kumo.core.identity.revocation import purge_expired
from kumo.core.network import routers
from kumo.db.engine import Database

log = logging.getLogger(__name__)


class Controller:
    def __init__(
        self,
        db: Database,
        config: Config,
        lease_interval: float = 5.0,
        lease_ttl: float = 20.0,
        poll: float = 1.0,
    ) -> None:
        self.db = db
        self.config = config
        self.lease_interval = lease_interval
        self.lease_ttl = lease_ttl
        self.poll = poll
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.active = False
        self._next_lease = 0.0
        self.host_failures = HostFailures(db, config)
        metrics.register()

    def renew(self) -> None:
        active = try_acquire(self.db, self.holder, self.lease_ttl)
        if active != self.active:
            log.info("controller %s is now %s", self.holder, "active" if active else "standby")
        self.active = active
        metrics.ACTIVE.set(active)
        if active:
            resolve_stuck(self.db)
            self.host_failures.step()
            timeout = self.config.hosts.heartbeat_timeout
            with self.db.session() as session:
                if routers.place_unhosted(session, timeout):
                    log.info("routers without a host placed")
                for move in routers.reschedule_from_dead_hosts(session, timeout):
                    log.warning("%s", move)
            with self.db.session() as session:
                purged = purge_expired(session)
            if purged:
                log.info("purged %d expired token revocation events", purged)

    def tick(self) -> None:
        now = time.monotonic()
        if now >= self._next_lease:
            self.renew()
            self._next_lease = now + self.lease_interval
        if self.active:
            metrics.SERVERS_PLACED.inc(
                schedule_pending(
                    self.db, self.config.scheduler, self.config.hosts.heartbeat_timeout
                )
            )
            restart_crashed(self.db)

    def run(self, stop: threading.Event) -> None:
        listen = self.config.controller.metrics_listen
        stop_metrics = None
        if listen:
            try:
                stop_metrics = metrics.serve(listen)
            except OSError as exc:  # the control loops matter more than their metrics
                log.error("cannot serve the controller's metrics at %s: %s", listen, exc)
        publisher = None
        if self.config.notifications.url:  # only the active controller publishes
            publisher = threading.Thread(
                target=Publisher(self.db, self.config.notifications.url, lambda: self.active).run,
                args=(stop,),
                name="outbox-publisher",
                daemon=True,
            )
            publisher.start()
        try:
            self._loop(stop)
        finally:
            if publisher is not None:
                publisher.join(10)
            if stop_metrics is not None:
                stop_metrics()

    def _loop(self, stop: threading.Event) -> None:
        mark = wakeup.mark(wakeup.SCHEDULER)
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a loop that dies silently is worse than a logged error
                log.exception("controller tick failed; retrying")
                stop.wait(self.poll)
            mark = wakeup.wait(wakeup.SCHEDULER, mark, self.poll)
        if self.active:
            release(self.db, self.holder)
            metrics.ACTIVE.set(0)

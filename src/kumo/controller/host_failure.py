"""Host failure, the controller's half: each pass of the active controller advances every
open host failure one step (kumo.core.ha has the state machine and its rules).

This side does what core may not: it reads the hosts' storage leases (file times in the
shared ``[ha] lease_dir``) and runs the fence command (with a timeout, never inside a
transaction). Each step is its own transaction, so a controller that dies between two
steps resumes at the one it had reached; the evacuations are Nova's evacuate operation
(kumo.core.compute.server_operations.EVACUATE), one per server, through the lifecycle.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from kumo.config import Config, HaConfig
from kumo.core import ha, operations
from kumo.core.compute import moves
from kumo.core.compute import server_operations as ops
from kumo.core.errors import KumoError
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.ha_tables import HostFailure
from kumo.db.types import utcnow

log = logging.getLogger(__name__)

# Who the actions of HA are recorded as (`openstack server event list`).
HA_CONTEXT = Context(
    user_id="kumo-ha", user_domain_id="default", roles=frozenset({"admin"}), system=True
)

# (config, host name, host UUID) -> (fenced, what the command said)
FenceRunner = Callable[[HaConfig, str, str], tuple[bool, str]]


def lease_age(cfg: HaConfig, host_id: str, now: float | None = None) -> float | None:
    """Seconds since the host's agent last renewed its storage lease; None: no lease
    directory configured, or the host never wrote one (not a signal either way)."""
    if not cfg.lease_dir:
        return None
    try:
        renewed = (Path(cfg.lease_dir) / host_id).stat().st_mtime
    except OSError:
        return None
    return max(0.0, (now or time.time()) - renewed)


def run_fence_command(cfg: HaConfig, host_name: str, host_id: str) -> tuple[bool, str]:
    """The configured fence command for the host: (fenced, what it said)."""
    argv = [
        arg.replace("{host}", host_name).replace("{host_id}", host_id)
        for arg in shlex.split(cfg.fence_command)
    ]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=cfg.fence_timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return False, f"{argv[0]} did not answer within {cfg.fence_timeout:.0f}s"
    except OSError as exc:
        return False, f"cannot run {argv[0]}: {exc}"
    said = (done.stdout + done.stderr).strip()[-1000:]
    if done.returncode != 0:
        return False, f"{argv[0]} exited {done.returncode}: {said}"
    return True, f"fence command answered: {said or 'exit 0'}"


class HostFailures:
    """The host failure pass of the active controller."""

    def __init__(
        self,
        db: Database,
        config: Config,
        fence: FenceRunner = run_fence_command,
        background: bool = True,
    ) -> None:
        self.db = db
        self.config = config
        self.fence = fence
        # A fence command may take up to fence_timeout: on a thread of its own, so the
        # controller's loop (and its lease, which is shorter) never waits for it.
        # background=False runs it inline (tests that step the machine pass by pass).
        self.background = background
        self._fencing: dict[str, threading.Thread] = {}

    @property
    def ha(self) -> HaConfig:
        return self.config.ha

    def step(self) -> None:
        """Open failures for hosts gone silent, then move each open one on."""
        if not self.ha.enabled:
            return
        with self.db.session() as session:
            for failure in ha.suspect_stale_hosts(session, self.config.hosts.heartbeat_timeout):
                log.warning("host %s suspected: heartbeat missed", failure.host_id)
        with self.db.session() as session:
            open_ids = ha.open_failures(session)
        for failure_id in open_ids:
            try:
                self.advance(failure_id)
            except Exception:  # one host's trouble must not stop the others' failover
                log.exception("host failure %s: step failed; retried next pass", failure_id)

    def advance(self, failure_id: str) -> None:
        fence_target: tuple[str, str] | None = None
        with self.db.session() as session:
            failure = session.get(HostFailure, failure_id, with_for_update=True)
            if failure is None or failure.ended_at is not None:
                return
            host = session.get(m.Host, failure.host_id)
            if host is None:
                ha.end(session, failure, ha.RECOVERED, "the host was removed")
                return
            state = failure.state
            if state == ha.SUSPECTED:
                self._suspected(session, failure, host)
                return
            if state == ha.AWAITING_SELF_FENCE:
                if ha.heartbeat_back(host, failure):
                    ha.recover(session, failure, host)
                elif failure.next_step_at is not None and utcnow() >= failure.next_step_at:
                    ha.fenced(
                        session,
                        failure,
                        f"self-fence deadline passed: {host.name}'s agent, if it still runs, "
                        f"stopped its guests after {self.ha.self_fence_after:.0f}s alone",
                    )
                return
            if state == ha.FENCING:
                if failure.next_step_at is not None and utcnow() < failure.next_step_at:
                    return
                fence_target = (host.name, host.id)
        if fence_target is not None:
            self._start_fence(failure_id, *fence_target)
        elif state == ha.EVACUATING:
            self._evacuate(failure_id)

    def _suspected(self, session: Session, failure: HostFailure, host: m.Host) -> None:
        if ha.heartbeat_back(host, failure):
            ha.recover(session, failure, host)
            return
        last = host.last_heartbeat_at or failure.created_at
        silent = (utcnow() - last).total_seconds()
        dead_after = max(self.ha.dead_after, self.config.hosts.heartbeat_timeout)
        if silent < dead_after:
            return
        why = f"no heartbeat for {silent:.0f}s"
        storage = lease_age(self.ha, host.id)
        if storage is not None:
            if storage < dead_after:
                return  # alive on its storage: cut off from the API only, not dead
            why += f" and no storage lease renewal for {storage:.0f}s"
        deadline = None
        if self.ha.self_fence_after > 0:
            deadline = last + dt.timedelta(
                seconds=self.ha.self_fence_after + self.ha.self_fence_margin
            )
        ha.declare_dead(session, failure, host, why, bool(self.ha.fence_command), deadline)
        log.warning("host %s declared dead: %s", host.name, why)

    def _start_fence(self, failure_id: str, host_name: str, host_id: str) -> None:
        if not self.background:
            self._fence(failure_id, host_name, host_id)
            return
        self._fencing = {k: t for k, t in self._fencing.items() if t.is_alive()}
        if failure_id in self._fencing:
            return  # its answer is recorded when it comes
        thread = threading.Thread(
            target=self._fence,
            args=(failure_id, host_name, host_id),
            name=f"fence-{host_name}",
            daemon=True,
        )
        self._fencing[failure_id] = thread
        thread.start()

    def _fence(self, failure_id: str, host_name: str, host_id: str) -> None:
        try:
            self._fence_once(failure_id, host_name, host_id)
        except Exception:  # on its own thread: nobody else would see it
            log.exception("host %s: fencing step failed; retried next pass", host_name)

    def _fence_once(self, failure_id: str, host_name: str, host_id: str) -> None:
        ok, said = self.fence(self.ha, host_name, host_id)  # outside any transaction
        with self.db.session() as session:
            failure = session.get(HostFailure, failure_id, with_for_update=True)
            if failure is None or failure.state != ha.FENCING:
                return
            if ok:
                ha.fenced(session, failure, said)
                log.warning("host %s fenced: %s", host_name, said)
            else:
                ha.fence_failed(session, failure, said, self.ha.fence_retry_interval)
                log.error("host %s: fencing failed: %s", host_name, said)

    def _evacuate(self, failure_id: str) -> None:
        with self.db.session() as session:
            failure = session.get(HostFailure, failure_id)
            if failure is None:
                return
            todo = ha.plan(session, failure, self.ha.evacuate_all)
            host = session.get(m.Host, failure.host_id)
            host_name = host.name if host is not None else failure.host_id
        env = operations.Env(self.config.scheduler, self.config.hosts.heartbeat_timeout)
        request = moves.EvacuateRequest(None, None, False)
        for server_id in todo.evacuate:
            try:
                operations.run(
                    self.db, HA_CONTEXT, ops.EVACUATE, ops.Evacuate(server_id, request), env
                )
            except KumoError as exc:
                refused = f"evacuation refused: {exc.message}"
                self._leave(failure_id, server_id, host_name, refused, env)
                continue
            with self.db.session() as session:
                ha.note_server(session, failure_id, server_id, ha.EVACUATED)
        for server_id in todo.leave:
            reason = (
                f"host {host_name} failed and was fenced; the server has no "
                f"{ha.HA_KEY}=True metadata, so it was not evacuated: evacuate or "
                "rebuild it, or start it when the host is back"
            )
            self._leave(failure_id, server_id, host_name, reason, env)
        if todo.waiting:
            return  # a task in flight ends by its deadline; the next pass handles it
        with self.db.session() as session:
            failure = session.get(HostFailure, failure_id, with_for_update=True)
            if (
                failure is not None
                and failure.state == ha.EVACUATING
                and not ha.plan(session, failure, self.ha.evacuate_all).evacuate
            ):
                ha.finish(session, failure)

    def _leave(
        self, failure_id: str, server_id: str, host_name: str, reason: str, env: operations.Env
    ) -> None:
        operations.run(
            self.db, HA_CONTEXT, ha.LEAVE_DOWN, ha.LeaveDown(server_id, host_name, reason), env
        )
        with self.db.session() as session:
            ha.note_server(session, failure_id, server_id, f"{ha.LEFT}: {reason}")

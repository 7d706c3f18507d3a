"""Moving every server off one host: `kumo host drain` and `kumo host evacuate`.

Drain empties a host that is up, for maintenance: the host is disabled first (with a
reason, so the scheduler places nothing new there and `kumo host list` says why), then each
server is live-migrated off it, or cold-migrated when it cannot move live and the operator
allows it (``cold``). Evacuate rebuilds the servers of a host that is down elsewhere. Both
are a batch of single-server moves, each one the compute API's own operation run through
the lifecycle (kumo.core.operations: policy, state checks, the claims lock, an instance
action, the agents woken), so every destination is chosen by placement
(kumo.core.compute.placement), never here.

:class:`HostMoves` keeps at most ``parallel`` moves in flight (a drain of fifty servers
must not saturate the network or the destinations at once) and follows each through its
``migrations`` row, which the agents drive (kumo.core.compute.migrations and .moves): it
is polled by :meth:`HostMoves.step`, which also does the operator's part of a cold
migration (confirming it once the server runs on the destination, so the source's copy
goes and the host ends empty). A server that cannot move is reported with the reason (the
operation's refusal, or the migration's message) and the others still move.

Nothing here is kept: the moves are ``migrations`` rows, which outlive the caller (the
agents and the controller finish or end them), and a drain run again simply finds the
servers still on the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core import hosts, operations, policy
from kumo.core.compute import migrations, moves, placement, states
from kumo.core.compute import server_operations as ops
from kumo.core.errors import Conflict, KumoError
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.lost_updates import retry_lost_updates

# How a server moves.
LIVE, COLD, EVACUATE = "live", "cold", "evacuate"
METHOD_OF_TYPE = {migrations.LIVE: LIVE, moves.COLD: COLD, moves.EVACUATION: EVACUATE}

# A move's result. WAITING and MOVING are on the way; the others are its end.
WAITING, MOVING = "waiting", "moving"
MOVED, REBUILT, GONE = "moved", "rebuilt", "deleted"
REFUSED, FAILED, TIMED_OUT = "refused", "failed", "timed out"
ACCEPTED = "accepted"  # started, and not followed (`kumo host evacuate --no-wait`)
ENDED_WELL = frozenset({MOVED, REBUILT, GONE})
ENDED_BADLY = frozenset({REFUSED, FAILED, TIMED_OUT})

# The drain's disabled reason, unless the operator gives one.
DRAIN_REASON = "drained for maintenance (kumo host drain)"
# States from which a server may move live, and cold (the transition table's).
LIVE_STATES = states.SERVER_TRANSITIONS["os-migrateLive"].vm_states or frozenset()
COLD_STATES = states.SERVER_TRANSITIONS["migrate"].vm_states or frozenset()


@dataclass
class Move:
    """One server's move off the host, as the operator sees it."""

    server_id: str
    name: str = ""
    method: str = ""  # LIVE, COLD or EVACUATE once started
    migration_id: int | None = None  # its ``migrations`` row
    destination: str = ""
    result: str = WAITING
    detail: str = ""
    progress: float | None = None  # 0..1 of a live migration's copy, when reported
    confirming: bool = False  # a cold migration's confirmResize was asked
    tried_live: bool = False  # a failed live migration falls back to cold (``cold``)

    @property
    def ended(self) -> bool:
        return self.result not in (WAITING, MOVING)

    @property
    def failed(self) -> bool:
        return self.result in ENDED_BADLY

    def row(self) -> dict[str, Any]:
        """The summary's line (the CLI's table and JSON)."""
        return {
            "server": self.server_id,
            "name": self.name,
            "method": self.method,
            "destination": self.destination,
            "result": self.result,
            "detail": self.detail,
        }


def servers_on(session: Session, host_id: str) -> list[tuple[str, str]]:
    """(id, name) of the servers a host owns, oldest first."""
    rows = session.execute(
        select(m.Instance.id, m.Instance.name)
        .where(m.Instance.host_id == host_id, m.Instance.deleted.is_(False))
        .order_by(m.Instance.created_at, m.Instance.id)
    )
    return [(row.id, row.name) for row in rows]


def begin_drain(
    db: Database, ctx: Context, host_ref: str, reason: str | None, heartbeat_timeout: float
) -> m.Host:
    """Disable the host (new servers and moves go elsewhere) before its servers are
    listed, so none lands there behind the drain's back. A host that is down cannot hand
    its guests over (409): evacuation is what rebuilds them elsewhere. Its own transaction,
    repeated when it loses to the host's heartbeat (the row's version, DESIGN.md 3.5)."""
    policy.enforce(ctx, "compute:migrate_live")

    def attempt() -> m.Host:
        with db.session() as session:
            host = hosts.find_host(session, host_ref)
            if not hosts.status_of(host, heartbeat_timeout).up:
                raise Conflict(
                    f"Host {host.name} is down: its servers cannot move live or cold; "
                    f"`kumo host evacuate {host.name}` rebuilds them on other hosts."
                )
            return hosts.set_enabled(session, host.id, False, reason or DRAIN_REASON)

    return retry_lost_updates(attempt)


def host_to_evacuate(db: Database, ctx: Context, host_ref: str) -> m.Host:
    policy.enforce(ctx, "compute:evacuate")
    with db.session() as session:
        return hosts.find_host(session, host_ref)


class HostMoves:
    """The moves off one host, at most ``parallel`` in flight (0: all at once).

    ``evacuation`` set: each server is evacuated with that request. Otherwise it is a
    drain: servers move live; with ``cold``, one that cannot (shut off, a hypervisor that
    cannot live-migrate, or a live migration that failed) is cold-migrated instead."""

    def __init__(
        self,
        db: Database,
        ctx: Context,
        env: operations.Env,
        host: m.Host,
        *,
        parallel: int = 0,
        cold: bool = False,
        evacuation: moves.EvacuateRequest | None = None,
    ) -> None:
        self.db, self.ctx, self.env = db, ctx, env
        self.host_id, self.host_name = host.id, host.name
        self.parallel, self.cold, self.evacuation = parallel, cold, evacuation
        self.moves: dict[str, Move] = {}
        self.rescans = 0
        self.find_servers()

    # --- the batch -------------------------------------------------------------------

    def find_servers(self) -> list[Move]:
        """Add the servers on the host not seen yet (a drain looks again at its end: a
        server placed while the host was being disabled is moved too)."""
        with self.db.session() as session:
            found = servers_on(session, self.host_id)
        added = [Move(sid, name) for sid, name in found if sid not in self.moves]
        for move in added:
            self.moves[move.server_id] = move
        return added

    @property
    def in_flight(self) -> list[Move]:
        return [mv for mv in self.moves.values() if mv.result == MOVING]

    @property
    def finished(self) -> bool:
        return all(mv.ended for mv in self.moves.values())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for move in self.moves.values():
            out[move.result] = out.get(move.result, 0) + 1
        return out

    def step(self) -> list[Move]:
        """Follow the moves in flight, then start waiting ones up to the limit. Returns
        the moves that ended in this step."""
        before = {sid for sid, mv in self.moves.items() if mv.ended}
        self._follow()
        self._start_more()
        if self.finished and self.evacuation is None and self.rescans < 3:
            self.rescans += 1
            if self.find_servers():
                self._start_more()
        return [mv for sid, mv in self.moves.items() if mv.ended and sid not in before]

    def give_up(self, why: str) -> list[Move]:
        """The caller's deadline passed: what has not ended is reported as such (the moves
        in flight go on; the controller ends a stuck one at its own deadline)."""
        left = [mv for mv in self.moves.values() if not mv.ended]
        for move in left:
            move.detail = why if move.result == WAITING else f"still {move.method}: {why}"
            move.result = TIMED_OUT
        return left

    def _start_more(self) -> None:
        limit = self.parallel if self.parallel > 0 else len(self.moves)
        for move in self.moves.values():
            if len(self.in_flight) >= limit:
                return
            if move.result == WAITING:
                self._start(move)

    # --- starting one move -------------------------------------------------------------

    def _start(self, move: Move) -> None:
        if self.evacuation is not None:
            self._run(move, EVACUATE)
            return
        with self.db.session() as session:
            instance = session.get(m.Instance, move.server_id)
            if instance is None or instance.deleted:
                move.result, move.detail = GONE, "deleted before it moved"
                return
            if instance.host_id != self.host_id:
                move.result, move.detail = MOVED, "moved off the host by another request"
                return
            status = states.status(instance.vm_state, instance.task_state)
            host = session.get(m.Host, self.host_id)
            live_ok = (
                not move.tried_live
                and instance.vm_state in LIVE_STATES
                and host is not None
                and placement.can(host, "live_migration")
            )
            why_not = _why_not_live(instance.vm_state, status, self.host_name)
        if live_ok:
            self._run(move, LIVE)
        elif self.cold:
            self._run(move, COLD)
        else:
            move.method = LIVE
            move.result, move.detail = REFUSED, why_not

    def _run(self, move: Move, method: str) -> None:
        sid = move.server_id
        request: tuple[Any, Any]
        if method == LIVE:
            request = (ops.LIVE_MIGRATE, ops.LiveMigrate(sid, migrations.LiveRequest(None, "auto")))
            move.tried_live = True
        elif method == COLD:
            request = (ops.MIGRATE, ops.ServerRequest(sid))
        else:
            assert self.evacuation is not None
            request = (ops.EVACUATE, ops.Evacuate(sid, self.evacuation))
        move.method = method
        try:
            done = operations.run(self.db, self.ctx, request[0], request[1], self.env)
        except KumoError as exc:
            move.result, move.detail = REFUSED, _joined(move.detail, exc.message)
            return
        if done.instance is not None:
            move.name = done.instance.name
        with self.db.session() as session:
            migration = _latest(session, sid)
            if migration is not None:
                move.migration_id = migration.id
                move.destination = migration.dest_compute or ""
        move.result, move.progress, move.confirming = MOVING, None, False

    # --- following the moves in flight --------------------------------------------------

    def _follow(self) -> None:
        to_confirm: list[Move] = []
        with self.db.session() as session:
            for move in self.in_flight:
                if self._look(session, move):
                    to_confirm.append(move)
        for move in to_confirm:
            try:
                confirm = ops.ServerRequest(move.server_id)
                operations.run(self.db, self.ctx, ops.CONFIRM_RESIZE, confirm, self.env)
                move.confirming = True
            except KumoError as exc:
                move.result, move.detail = FAILED, f"moved, but not confirmed: {exc.message}"

    def _look(self, session: Session, move: Move) -> bool:
        """Read one move's migration; True when a cold one waits for its confirmation."""
        instance = session.get(m.Instance, move.server_id)
        migration = session.get(m.Migration, move.migration_id) if move.migration_id else None
        if instance is None or instance.deleted:
            move.result, move.detail = GONE, "deleted while it moved"
            return False
        if migration is None:  # cannot happen: the operation wrote it
            move.result, move.detail = FAILED, "its migration record is gone"
            return False
        status = migration.status
        if move.method == LIVE:
            move.progress = _copied(migration)
            if status == "completed":
                move.result = MOVED
            elif status in migrations.ENDED_BADLY:
                self._failed(move, migration)
        elif move.method == COLD:
            if status == "finished" and not move.confirming:
                # VERIFY_RESIZE once the destination runs the server as it was.
                return instance.vm_state == "resized" and instance.task_state is None
            if status == "confirmed":
                move.result = MOVED
            elif status in ("failed", "error", "reverted"):
                self._failed(move, migration)
        elif status in ("done", "completed"):
            move.result = REBUILT
        elif status in ("failed", "error"):
            self._failed(move, migration)
        return False

    def _failed(self, move: Move, migration: m.Migration) -> None:
        reason = f"{move.method} migration {migration.status}" + (
            f": {migration.message}" if migration.message else ""
        )
        if move.method == LIVE and self.cold and migration.status != "cancelled":
            move.result, move.detail = WAITING, reason  # cold next, saying why
            return
        move.result, move.detail = FAILED, _joined(move.detail, reason)


def _shown(vm_states: frozenset[str]) -> str:
    """ACTIVE or PAUSED: the statuses of a set of vm_states, for a reason."""
    return " or ".join(sorted(states.STATUS_BY_VM_STATE[vm] for vm in vm_states))


def _why_not_live(vm_state: str, status: str, host_name: str) -> str:
    """Why a drain without --cold leaves a server where it is, and whether --cold helps."""
    if vm_state not in LIVE_STATES:
        why = f"it is {status}: only {_shown(LIVE_STATES)} servers move live"
    else:
        why = f"the hypervisor of {host_name} cannot live-migrate"
    if vm_state in COLD_STATES:
        return f"{why}; --cold moves it shut off"
    return f"{why}, {_shown(COLD_STATES)} ones cold"


def _latest(session: Session, server_id: str) -> m.Migration | None:
    """The server's newest migration: the one its move just recorded (the server's task
    keeps any other move from starting meanwhile)."""
    return session.scalars(
        select(m.Migration)
        .where(m.Migration.instance_uuid == server_id)
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()


def _copied(migration: m.Migration) -> float | None:
    total = (migration.memory_total_bytes or 0) + (migration.disk_total_bytes or 0)
    if not total:
        return None
    done = (migration.memory_processed_bytes or 0) + (migration.disk_processed_bytes or 0)
    return min(1.0, done / total)


def _joined(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def summary(moved: Iterable[Move]) -> str:
    """ "3 moved, 1 refused" in the order results are read."""
    counts: dict[str, int] = {}
    for move in moved:
        counts[move.result] = counts.get(move.result, 0) + 1
    order = [MOVED, REBUILT, GONE, ACCEPTED, REFUSED, FAILED, TIMED_OUT, MOVING, WAITING]
    return ", ".join(f"{counts[r]} {r}" for r in order if counts.get(r))

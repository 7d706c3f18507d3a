"""Host failure, the domain half: the state machine of a host that stopped answering, kept
in the database (kumo.db.ha_tables) so that it resumes after a controller restart.

    suspected ──(heartbeat back)──> recovered
    suspected ──(no heartbeat for dead_after, and no storage lease renewal)──> forced down,
        then: fencing (a fence command is configured)
              awaiting_self_fence (agents self-fence: wait for their deadline to pass)
              unfenced (neither: nothing may be evacuated; the servers are left as
                        they are, for an operator who powers the host off)
    fencing ──(the command answered 0)──> evacuating;  (it failed) ──> fencing, retried
    awaiting_self_fence ──(deadline passed)──> evacuating;  (heartbeat back) ──> recovered
    evacuating ──(every server handled)──> done

A host is declared dead on two signals where it can: its missed heartbeats and, with a
shared lease directory, its storage lease; and nothing is evacuated before it is fenced
(the fence command answered, or the agent's own self-fence deadline passed), so a guest
never runs twice. Evacuation is Nova's evacuate operation, through the lifecycle and the
placement module like an operator's; only servers with ``HA_Enabled=True`` metadata go
(Masakari's key and default), the others are left ERROR with a fault that says why, their
guest to stay off when the host comes back (desired state: stopped).

The controller (kumo.controller.host_failure) runs the fence command and reads the lease
files; this module only decides and records. Every step is a host failure event and, for
each server, an instance action (``evacuate``, or ``hostFailure`` for one left down).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.operations import Env, Operation, Result
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.ha_tables import HostFailure, HostFailureEvent
from kumo.db.types import utcnow

HA_KEY = "HA_Enabled"  # Masakari's metadata key
ACTION = "hostFailure"

SUSPECTED = "suspected"
FENCING = "fencing"
AWAITING_SELF_FENCE = "awaiting_self_fence"
EVACUATING = "evacuating"
DONE = "done"
RECOVERED = "recovered"
UNFENCED = "unfenced"
OPEN = (SUSPECTED, FENCING, AWAITING_SELF_FENCE, EVACUATING)

# What the failure did to each server (HostFailure.servers values).
EVACUATED = "evacuated"
LEFT = "left"


def wants_evacuation(instance: m.Instance, evacuate_all: bool) -> bool:
    """Masakari's rule: HA_Enabled metadata that reads as true ("True", "1", "yes")."""
    if evacuate_all:
        return True
    value = str((instance.meta or {}).get(HA_KEY, "")).strip().lower()
    return value in ("true", "1", "yes", "on", "y", "t")


def record(session: Session, failure: HostFailure, step: str, message: str) -> None:
    session.add(
        HostFailureEvent(
            failure_id=failure.id, host_id=failure.host_id, step=step, message=message[:4000]
        )
    )


def open_failures(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(HostFailure.id)
            .where(HostFailure.ended_at.is_(None))
            .order_by(HostFailure.created_at, HostFailure.id)
        )
    )


def _latest(session: Session, host_id: str) -> HostFailure | None:
    return session.scalars(
        select(HostFailure)
        .where(HostFailure.host_id == host_id)
        .order_by(HostFailure.created_at.desc(), HostFailure.id.desc())
        .limit(1)
    ).first()


def _servers_on(session: Session, host_id: str) -> list[m.Instance]:
    return list(
        session.scalars(
            select(m.Instance)
            .where(m.Instance.host_id == host_id, m.Instance.deleted.is_(False))
            .order_by(m.Instance.created_at, m.Instance.id)
        )
    )


def suspect_stale_hosts(session: Session, heartbeat_timeout: float) -> list[HostFailure]:
    """Open a failure for each host whose heartbeat is older than the timeout and that
    holds servers (a host with none has nothing to fail over), unless one is open already
    or its last failure was about this same, last heartbeat (it ended: the host stays as
    it left it until it answers again)."""
    now = utcnow()
    limit = now - dt.timedelta(seconds=heartbeat_timeout)
    hosting = select(m.Instance.host_id).where(m.Instance.deleted.is_(False)).distinct()
    stale = session.scalars(
        select(m.Host).where(
            m.Host.last_heartbeat_at.is_not(None),
            m.Host.last_heartbeat_at < limit,
            m.Host.id.in_(hosting),
        )
    )
    opened = []
    for host in stale:
        latest = _latest(session, host.id)
        if latest is not None and (
            latest.ended_at is None or latest.last_heartbeat_at == host.last_heartbeat_at
        ):
            continue
        failure = HostFailure(
            id=str(uuid.uuid4()),
            host_id=host.id,
            state=SUSPECTED,
            last_heartbeat_at=host.last_heartbeat_at,
            servers={},
        )
        session.add(failure)
        session.flush()
        age = (now - host.last_heartbeat_at).total_seconds() if host.last_heartbeat_at else 0
        record(session, failure, SUSPECTED, f"host {host.name}: no heartbeat for {age:.0f}s")
        opened.append(failure)
    return opened


def heartbeat_back(host: m.Host, failure: HostFailure) -> bool:
    return (
        host.last_heartbeat_at is not None
        and failure.last_heartbeat_at is not None
        and host.last_heartbeat_at > failure.last_heartbeat_at
    )


def end(session: Session, failure: HostFailure, state: str, message: str) -> None:
    failure.state = state
    failure.ended_at = utcnow()
    failure.next_step_at = None
    record(session, failure, state, message)


def recover(session: Session, failure: HostFailure, host: m.Host) -> None:
    """The host answered before anything irreversible: it keeps its servers; the flag
    this failure set (if any) is cleared."""
    if failure.forced_down_by_us:
        host.forced_down = False
    end(session, failure, RECOVERED, f"host {host.name} heartbeats again; nothing was moved")


def declare_dead(
    session: Session,
    failure: HostFailure,
    host: m.Host,
    why: str,
    fence_command: bool,
    self_fence_deadline: dt.datetime | None,
) -> None:
    """Force the host down (the scheduler stops choosing it, evacuate accepts it) and
    choose how it is fenced."""
    if not host.forced_down:
        host.forced_down = True
        failure.forced_down_by_us = True
    record(session, failure, "forced_down", f"host {host.name} declared dead: {why}")
    if fence_command:
        failure.state = FENCING
        failure.next_step_at = None
    elif self_fence_deadline is not None:
        failure.state = AWAITING_SELF_FENCE
        failure.next_step_at = self_fence_deadline
        record(
            session,
            failure,
            AWAITING_SELF_FENCE,
            f"no fence command: waiting until {self_fence_deadline.isoformat()}Z, when its "
            "agent has stopped its guests if it still runs (self-fencing)",
        )
    else:
        end(
            session,
            failure,
            UNFENCED,
            "no fence command and no self-fencing configured: nothing is evacuated and "
            "its servers are left as they are (host_status DOWN); power the host off, "
            "then `kumo host evacuate`",
        )


def fenced(session: Session, failure: HostFailure, how: str) -> None:
    failure.state = EVACUATING
    failure.next_step_at = None
    record(session, failure, "fenced", how)


def fence_failed(session: Session, failure: HostFailure, why: str, retry: float) -> None:
    failure.fence_attempts += 1
    failure.next_step_at = utcnow() + dt.timedelta(seconds=retry)
    record(session, failure, "fence_failed", f"attempt {failure.fence_attempts}: {why}")


@dataclass(frozen=True)
class Plan:
    """The servers of a dead host still to handle: to evacuate, to leave down, and how
    many wait for a task in flight to end (its deadline resolves it)."""

    evacuate: tuple[str, ...]
    leave: tuple[str, ...]
    waiting: int


def plan(session: Session, failure: HostFailure, evacuate_all: bool) -> Plan:
    evacuate: list[str] = []
    leave: list[str] = []
    waiting = 0
    for instance in _servers_on(session, failure.host_id):
        if instance.id in (failure.servers or {}) or instance.desired_state == "deleted":
            continue
        if instance.task_state is not None:
            waiting += 1
        elif wants_evacuation(instance, evacuate_all):
            evacuate.append(instance.id)
        else:
            leave.append(instance.id)
    return Plan(tuple(evacuate), tuple(leave), waiting)


def note_server(session: Session, failure_id: str, server_id: str, outcome: str) -> None:
    failure = session.get(HostFailure, failure_id, with_for_update=True)
    if failure is not None:
        failure.servers = {**(failure.servers or {}), server_id: outcome}


def finish(session: Session, failure: HostFailure) -> None:
    done = failure.servers or {}
    moved = sum(1 for v in done.values() if v == EVACUATED)
    end(
        session,
        failure,
        DONE,
        f"{moved} server(s) evacuated, {len(done) - moved} left down; the host stays forced "
        "down until an operator clears it (openstack compute service set --up)",
    )


def events(session: Session, host_id: str | None = None) -> list[HostFailureEvent]:
    query = select(HostFailureEvent).order_by(HostFailureEvent.id)
    if host_id is not None:
        query = query.where(HostFailureEvent.host_id == host_id)
    return list(session.scalars(query))


def history(
    session: Session, host_id: str | None = None, limit: int = 100
) -> list[tuple[HostFailure, list[HostFailureEvent]]]:
    """The latest failures (of one host, or all), newest first, each with its events."""
    query = select(HostFailure).order_by(HostFailure.created_at.desc(), HostFailure.id)
    if host_id is not None:
        query = query.where(HostFailure.host_id == host_id)
    failures = list(session.scalars(query.limit(limit)))
    found: dict[str, list[HostFailureEvent]] = {f.id: [] for f in failures}
    if found:
        for event in session.scalars(
            select(HostFailureEvent)
            .where(HostFailureEvent.failure_id.in_(list(found)))
            .order_by(HostFailureEvent.id)
        ):
            found[event.failure_id].append(event)
    return [(f, found[f.id]) for f in failures]


def open_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(HostFailure.ended_at.is_(None))) or 0)


# --- a server left down -----------------------------------------------------------------


@dataclass(frozen=True)
class LeaveDown:
    server_id: str
    host_name: str
    reason: str


def _leave_down(session: Session, ctx: Context, req: LeaveDown, env: Env) -> Result[bool]:
    """ERROR with a fault that says why; its desired state becomes stopped, so the guest
    stays off if the host comes back (the server then reads SHUTOFF: start it by hand).
    A server that was SHUTOFF already stays so, with the action recorded."""
    instance = session.get(m.Instance, req.server_id)
    if instance is None or instance.deleted:
        return Result(False)
    now = utcnow()
    if instance.vm_state == "stopped" and instance.desired_state == "stopped":
        # Off already: it stays SHUTOFF where it is; the action says what happened.
        return Result(True, instance, message=f"Error: {req.reason}"[:4000], finished=True)
    instance.desired_state = "stopped"
    instance.vm_state = "error"
    instance.task_state = None
    instance.task_deadline = None
    instance.generation += 1
    instance.fault = {
        "code": 500,
        "created": now.isoformat() + "Z",
        "message": f"Host {req.host_name} failed; the server was not evacuated"[:255],
        "details": req.reason,
    }
    return Result(True, instance, message=f"Error: {req.reason}"[:4000], finished=True)


LEAVE_DOWN = Operation(ACTION, LeaveDown, _leave_down)

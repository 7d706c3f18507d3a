"""Guest restart: a guest whose QEMU exited without being asked to is started again on
its host, within a budget, unless its server or flavor opts out.

The agent reports the guest CRASHED (the driver's word: its process was killed, crashed
or killed by the OOM killer; a guest that powered itself off is SHUTDOWN and stays
SHUTOFF, as in Nova). Two steps follow, both level-triggered from the database:

1. the observation path (``exited``, called by kumo.core.compute.reports) records the
   exit as a ``restart`` instance action, whose message says why, and leaves the server
   ACTIVE with power state Crashed; a server that opts out goes SHUTOFF instead, with a
   finished ``stop`` action saying why;
2. the controller (``RESTART``, run for each ``crashed_servers``) asks the host's agent
   to power the guest on (task ``powering-on``; the task's end finishes the action and
   its event), once the back-off since the exit has passed; the exit that makes
   ``MAX_EXITS`` within ``WINDOW`` puts the server in ERROR with a fault instead.

A server with a request in flight or one the user asked to stop is never restarted: the
controller acts only on an ACTIVE server with no task whose desired state is still
active. A restarted agent or kumo changes nothing here: a running guest is not CRASHED.

Opting out: the server's metadata key ``kumo:guest_restart`` (set by its owner), else the
flavor's extra spec of the same name (set by an operator), with a false value (``false``,
``0``, ``no``, ``off``); anything else, or neither, leaves restart on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core import wakeup
from kumo.core.commit_wakeups import wake_after_commit
from kumo.core.compute import servers, states
from kumo.core.compute.instance_actions import end_action, record_action
from kumo.core.operations import Env, Operation, Result
from kumo.core.policy import SERVICE, Context
from kumo.db import models as m
from kumo.db.types import utcnow

ACTION = "restart"
OPT_OUT_KEY = "kumo:guest_restart"
MAX_EXITS = 5  # unexpected exits within WINDOW that end in ERROR instead of a restart
WINDOW = dt.timedelta(seconds=60)
BACKOFF_CAP = 30.0
_FALSE = frozenset({"false", "0", "no", "off", "disabled"})


def backoff(earlier: int) -> float:
    """Seconds from an exit to its restart, given the exits seen in the WINDOW before it:
    at once for the first, then 1, 2, 4... s (at most BACKOFF_CAP)."""
    return 0.0 if earlier <= 0 else min(2.0 ** (earlier - 1), BACKOFF_CAP)


def restart_wanted(instance: m.Instance) -> tuple[bool, str]:
    """Whether the server's guest is restarted after an unexpected exit, and which setting
    says so (for the instance action's message)."""
    meta = instance.meta or {}
    if OPT_OUT_KEY in meta:
        value = str(meta[OPT_OUT_KEY])
        return value.strip().lower() not in _FALSE, f"server metadata {OPT_OUT_KEY}={value}"
    specs = (instance.flavor or {}).get("extra_specs") or {}
    if OPT_OUT_KEY in specs:
        value = str(specs[OPT_OUT_KEY])
        return value.strip().lower() not in _FALSE, f"flavor extra spec {OPT_OUT_KEY}={value}"
    return True, "the default"


def _open_restart(session: Session, instance_id: str) -> m.InstanceAction | None:
    """The server's restart action still waiting for its guest to run again."""
    with session.no_autoflush:
        row = session.scalars(
            select(m.InstanceAction)
            .where(m.InstanceAction.instance_id == instance_id, m.InstanceAction.action == ACTION)
            .order_by(m.InstanceAction.id.desc())
            .limit(1)
        ).first()
    return row if row is not None and row.finish_time is None else None


def exited(session: Session, instance: m.Instance, detail: str | None) -> bool:
    """The observation path: the agent saw the guest of this ACTIVE server (no task,
    desired active) exit without being asked to. True: it is to be restarted (the exit
    is recorded and the controller woken); False: the server opted out (a finished
    ``stop`` action says so), and the caller shows it SHUTOFF."""
    why = f"The guest's QEMU exited without being asked to ({detail or 'killed or crashed'})"
    wanted, setting = restart_wanted(instance)
    if not wanted:
        row = record_action(
            session, SERVICE, instance.id, "stop", f"{why}; not restarted ({setting})"
        )
        row.finish_time = utcnow()
        return False
    if _open_restart(session, instance.id) is None:
        record_action(session, SERVICE, instance.id, ACTION, f"{why}; restarting it")
    wake_after_commit(session, wakeup.SCHEDULER)
    return True


def exited_again(session: Session, instance: m.Instance, detail: str | None) -> bool:
    """The observation path, during a restart (task ``powering-on`` of an ACTIVE server):
    the new QEMU exited too before it was seen running. That restart failed (its action
    ends in error) and this is one more exit. True when it was such a restart."""
    action = _open_restart(session, instance.id)
    if action is None:
        return False
    end_action(session, instance.id, ACTION, f"Error: the guest exited again ({detail})")
    return True


def crashed_servers(session: Session) -> list[str]:
    """Servers whose guest exited unexpectedly and waits for the controller's restart."""
    return list(
        session.scalars(
            select(m.Instance.id)
            .where(
                m.Instance.deleted.is_(False),
                m.Instance.vm_state == "active",
                m.Instance.task_state.is_(None),
                m.Instance.desired_state == "active",
                m.Instance.power_state == states.CRASHED,
                m.Instance.host_id.is_not(None),
            )
            .order_by(m.Instance.id)
        )
    )


@dataclass(frozen=True)
class CrashedGuest:
    """A server whose guest may be waiting for its restart (checked again in the
    operation: it may have been stopped, deleted or restarted since)."""

    server_id: str


def _restart(session: Session, ctx: Context, req: CrashedGuest, env: Env) -> Result[bool]:
    """The value: whether the server changed (restart asked for, or ERROR, or SHUTOFF)."""
    instance = session.get(m.Instance, req.server_id)
    if (
        instance is None
        or instance.deleted
        or instance.vm_state != "active"
        or instance.task_state is not None
        or instance.desired_state != "active"
        or instance.power_state != states.CRASHED
        or instance.host_id is None
    ):
        return Result(False)
    action = _open_restart(session, instance.id)
    if action is None:  # reported by an API older than guest restart: record it now
        action = record_action(
            session, ctx, instance.id, ACTION, "The guest's QEMU exited without being asked to"
        )
        session.flush()
    wanted, setting = restart_wanted(instance)
    if not wanted:  # opted out while it waited
        instance.vm_state = "stopped"
        instance.desired_state = "stopped"
        end_action(session, instance.id, ACTION, f"Not restarted: {setting}")
        return Result(True, other_hosts=(instance.host_id,))
    started = action.start_time or utcnow()
    earlier = session.scalar(
        select(func.count())
        .select_from(m.InstanceAction)
        .where(
            m.InstanceAction.instance_id == instance.id,
            m.InstanceAction.action == ACTION,
            m.InstanceAction.id != action.id,
            m.InstanceAction.start_time > started - WINDOW,
            m.InstanceAction.start_time <= started,
        )
    )
    earlier = int(earlier or 0)
    if earlier + 1 >= MAX_EXITS:
        seconds = int(WINDOW.total_seconds())
        details = (
            f"The guest's QEMU exited without being asked to {earlier + 1} times within "
            f"{seconds} s; it is not restarted again. Last: {action.message}. Look at its "
            "console log and the host, then start it again (stop, then start) or rebuild it."
        )
        instance.vm_state = "error"
        instance.fault = {
            "code": 500,
            "created": utcnow().isoformat() + "Z",
            "message": f"The guest crashed {earlier + 1} times within {seconds} s",
            "details": details,
        }
        end_action(session, instance.id, ACTION, f"Error: {details}")
        return Result(True, other_hosts=(instance.host_id,))
    if utcnow() < started + dt.timedelta(seconds=backoff(earlier)):
        return Result(False)  # backing off: a later pass restarts it
    servers.ask(instance, "active", "powering-on")
    return Result(True, other_hosts=(instance.host_id,))


# No transition to check before: the server may have changed since it was listed, which
# execute checks (and then does nothing) rather than refusing with a 409 to no one. The
# instance action was recorded at the exit, so the runner records none (no ``instance``).
RESTART = Operation(ACTION, CrashedGuest, _restart)

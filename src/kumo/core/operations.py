"""One lifecycle for every mutating operation (DESIGN.md section 3, rule 8).

An operation runs in Ganeti's fixed phases, whoever asks for it (the API, the CLI, the
controller):

1. check arguments: the values when the caller builds the operation's typed *request* (a
   frozen dataclass of values; the API turns each microversion's JSON into it, core never
   sees a body or a version), then the caller's right to ask (``Operation.policy``);
2. take the declared locks (``Operation.locks``, e.g. ``CLAIMS`` for a move that claims a
   host), first in the transaction;
3. check prerequisites against the resource's transition table: the runner loads the
   request's server (404 if the caller may not see it), refuses a locked one to a
   non-admin (``Operation.checks_lock``) and checks its state against the entry the
   operation declares (``Operation.transition``, a key of
   kumo.core.compute.states.SERVER_TRANSITIONS, whose ``check`` words Nova's 409);
4. write the desired state (``Operation.execute``);
5. record the instance action (``Operation.name``) in the same transaction;
6. commit, repeating the whole transaction on a lost update (retry_lost_updates: no
   operation depends on the row version a client saw), then fire the after-commit effects:
   wake the agents of the hosts concerned. Nothing is woken for a transaction that did not
   commit, and no caller wakes anyone itself.

Adding an operation:

- write its request dataclass (values only; a server's operation has a ``server_id``) and
  an ``execute(session, ctx, request, env) -> Result`` that writes the desired state (its
  server's state was checked already: execute checks what depends on other rows);
- give it an entry in the resource's transition table (states.SERVER_TRANSITIONS);
- declare it as an ``Operation`` with its action name, transition, policy and locks (examples:
  kumo.core.compute.server_operations, volume_operations, scheduling);
- run it with ``run`` from every caller; for a server action, add its parser to the API's
  table (kumo.api.compute.server_actions.ACTIONS).

The ``Result`` says what to record and whom to wake: ``instance`` (None: no action, as
placement records none), ``message``, ``finished`` (nothing is left for an agent),
``other_hosts``. A function that writes vm_state or task_state must be an execute step
(or the agents' observation path): tests/unit/test_state_writers.py fails otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import wakeup
from kumo.core.compute import states
from kumo.core.compute.instance_actions import record_action
from kumo.core.compute.servers import check_not_locked, get
from kumo.core.policy import Context, enforce
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.locking import lock_for_claims
from kumo.db.lost_updates import retry_lost_updates
from kumo.db.types import utcnow

if TYPE_CHECKING:
    from kumo.core.volume.volumes import Placement

Req = TypeVar("Req")
Val = TypeVar("Val")

CLAIMS = "claims"  # the host claims lock (kumo.db.locking): moves and resizes take it


@dataclass(frozen=True)
class Env:
    """What some operations need of the cloud's configuration: placing a move; placing a
    create's new volumes (None: the defaults) and whether every server gets a config
    drive."""

    scheduler: SchedulerConfig
    heartbeat_timeout: float
    volume_placement: Placement | None = None
    force_config_drive: bool = False


@dataclass
class Result(Generic[Val]):
    """What an operation's transaction leaves: its value for the caller, the server its
    action is recorded on (None: no action to record) and the further servers the same
    action is recorded on (the others of a create of several), the action's message,
    whether the action is finished already (nothing is left for an agent to do), the
    other hosts that have their part to do (the server's own host is woken anyway) and
    any other wake-up topics (kumo.core.wakeup: the scheduler's, a volume host's)."""

    value: Val
    instance: m.Instance | None = None
    message: str | None = None
    other_hosts: tuple[str | None, ...] = ()
    finished: bool = False
    also: tuple[m.Instance, ...] = ()
    topics: tuple[str, ...] = ()

    def recorded(self) -> list[m.Instance]:
        """The servers whose instance action the runner records."""
        return [self.instance, *self.also] if self.instance is not None else list(self.also)

    def hosts(self) -> list[str]:
        """The hosts whose agents are woken after the commit, each once."""
        own = self.instance.host_id if self.instance is not None else None
        return list(dict.fromkeys(h for h in (own, *self.other_hosts) if h))


@dataclass(frozen=True)
class Operation(Generic[Req, Val]):
    """A declared operation: the instance action it records, its request type, its execute
    step (phase 4, in the runner's transaction) and what the runner checks and takes
    before it: the policy rule the caller must pass, the locks, whether a locked server
    refuses it, and the transition of the request's server it makes (a key of
    states.SERVER_TRANSITIONS, or a function of the request naming one; None: no server
    state to check, as for a create)."""

    name: str
    request: type[Req]
    execute: Callable[[Session, Context, Req, Env], Result[Val]]
    locks: tuple[str, ...] = ()
    transition: str | Callable[[Req], str] | None = None
    checks_lock: bool = False
    policy: str | None = None


def _take(session: Session, locks: tuple[str, ...]) -> None:
    for lock in locks:
        if lock != CLAIMS:
            raise ValueError(f"unknown lock {lock!r}")
        lock_for_claims(session)  # first: on SQLite it must open the transaction


def check_prerequisites(
    session: Session, ctx: Context, op: Operation[Req, Val], request: Req
) -> None:
    """Phase 3: the request's server may make the operation's transition from its state."""
    if op.transition is None:
        return
    key = op.transition if isinstance(op.transition, str) else op.transition(request)
    instance = get(session, ctx, request.server_id)  # type: ignore[attr-defined]
    if op.checks_lock:
        check_not_locked(ctx, instance)
    states.check(key, instance)


def run(db: Database, ctx: Context, op: Operation[Req, Val], request: Req, env: Env) -> Result[Val]:
    """Run ``op`` for ``request`` through every phase; its result once committed and the
    after-commit effects fired."""
    if not isinstance(request, op.request):
        raise TypeError(f"{op.name} takes a {op.request.__name__}, not {type(request).__name__}")
    if op.transition is not None and not hasattr(request, "server_id"):
        raise TypeError(f"{op.name} checks a server's transition: its request names none")
    if op.policy is not None:
        enforce(ctx, op.policy)

    def attempt() -> Result[Val]:
        with db.session() as session:
            _take(session, op.locks)
            check_prerequisites(session, ctx, op, request)
            result = op.execute(session, ctx, request, env)
            for instance in result.recorded():
                action = record_action(session, ctx, instance.id, op.name, result.message)
                if result.finished:
                    action.finish_time = utcnow()
            return result

    result = retry_lost_updates(attempt)
    after_commit(result)
    return result


def after_commit(result: Result[Val]) -> None:
    """The effects of a committed operation: its hosts' agents act now, not at their next
    poll (a wake-up lost costs latency only, DESIGN.md 3.2)."""
    topics = [*(wakeup.host_topic(h) for h in result.hosts()), *result.topics]
    if topics:
        wakeup.notify(*topics)

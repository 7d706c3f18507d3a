"""Moving a server that is not running live: evacuation off a dead host, cold migration.

Both share the ``migrations`` row with live migration (kumo.core.compute.migrations) and
its rules: the destination is chosen synchronously by placement (the scheduler's filters
and weighers, kumo.core.compute.placement) and claimed in the same transaction that records
the migration, under the claims lock (DESIGN.md 3.4); each agent does its part from the
migration's status every pass and reports it, so a pass repeated after a crash does no harm
(DESIGN.md 3.2).

Evacuation (Nova's statuses): the source host is down, so nothing can be asked of it. One
transaction moves the server to the destination at once (``instances.host_id`` and its
allocation; the dead host's share is released), records the ``evacuation`` migration
(``accepted``) and asks for a rebuild from the server's image there (task ``rebuilding``,
the power state kept: a stopped server stays stopped). The destination's agent rebuilds it
like any rebuild; when it reports, the migration is ``done``. The dead host's agent, if it
comes back, finds the migration among its work, with the server no longer its own: it
destroys the guest it still has and its files instead of restarting it, reports
``cleaned``, and the migration is ``completed``.

Cold migration (Nova's statuses), the server shut off while its disk moves:

    pre-migrating ──(source: guest shut off, root disk served: exported)──> migrating
    migrating ──(dest: disk copied: imported; the switch)──> finished     (VERIFY_RESIZE)
    finished ──confirmResize──> confirming ──(source: its copy destroyed)──> confirmed
    finished ──revertResize──> reverting ──(dest: its copy destroyed; switch back)──> reverted
    pre-migrating/migrating ──(failure, deadline)──> failed / error (the server stays)

The destination's claim is held under the migration's UUID until the switch; then the
claims swap (the server's allocation is the destination's, the migration holds the source's
until confirm releases it or revert takes it back), as Nova's placement does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import hosts, policy
from kumo.core.compute import nics, placement, servers
from kumo.core.compute.instance_actions import end_action
from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

EVACUATION = "evacuation"
COLD = "migration"
# An evacuation the destination has not finished rebuilding yet.
EVACUATION_OPEN = ("accepted", "pre-migrating")
# A cold migration before the switch, and the statuses in which the migration's UUID holds
# an allocation (the destination's before the switch, the source's after it).
COLD_BEFORE_SWITCH = ("pre-migrating", "migrating")
COLD_HOLDS_CLAIM = ("pre-migrating", "migrating", "finished", "reverting")
COLD_EVENTS = ("exported", "imported", "failed", "reverted", "cleaned")


@dataclass(frozen=True)
class EvacuateRequest:
    host: str | None
    admin_pass: str | None  # the password to answer with (before 2.14), None: none
    on_shared_storage: bool


def _new_migration(
    instance: m.Instance, ctx: Context, kind: str, status: str, source: m.Host, dest: m.Host
) -> m.Migration:
    return m.Migration(
        uuid=str(uuid.uuid4()),
        instance_uuid=instance.id,
        migration_type=kind,
        status=status,
        source_host_id=source.id,
        dest_host_id=dest.id,
        source_compute=source.name,
        source_node=source.name,
        dest_compute=dest.name,
        dest_node=dest.name,
        old_flavor_id=instance.flavor_id,
        new_flavor_id=instance.flavor_id,
        block_migration=False,
        user_id=ctx.user_id,
        project_id=instance.project_id,
    )


# --- evacuate -----------------------------------------------------------------------------


def evacuate(
    session: Session,
    ctx: Context,
    server_id: str,
    request: EvacuateRequest,
    cfg: SchedulerConfig,
    heartbeat_timeout: float,
) -> tuple[m.Instance, m.Migration]:
    """Rebuild a server of a down host on another host, in one transaction: the server and
    its allocation move to the destination, the ``evacuation`` migration is recorded, the
    destination's agent is asked for a rebuild from the server's image.

    Nova's checks, in Nova's order: the named host exists (404) and is not the server's
    (400); the server is ACTIVE, STOPPED or ERROR with no task (409); its host is down,
    by heartbeat or forced down (400 "still in use" otherwise); a destination fits (400)."""
    # Under the claims lock its operation declares (the runner takes it first), after the
    # runner checked the caller's right and the server's state.
    named: m.Host | None = None
    if request.host is not None:
        named = session.scalars(select(m.Host).where(m.Host.name == request.host)).first()
        if named is None:
            raise NotFound(f"Compute host {request.host} not found.")
    instance = servers.get(session, ctx, server_id)
    from kumo.core.volume import attachments  # block storage imports compute

    attachments.check_movable(session, instance)
    if named is not None and instance.host_id == named.id:
        raise BadRequest("The target host can't be the same one.")
    source = session.get(m.Host, instance.host_id) if instance.host_id else None
    if source is None:
        raise Conflict(f"Instance {server_id} is not ready")
    if hosts.status_of(source, heartbeat_timeout).up:
        raise BadRequest(f"Compute service of {source.name} is still in use.")
    if instance.image_id is None:
        raise BadRequest(f"Instance {server_id} has no image to be rebuilt from.")
    chosen = placement.best_or_refuse(
        placement.select_for_move(
            session, cfg, heartbeat_timeout, instance, placement.EVACUATE, source, named
        )
    )
    dest = chosen.host
    migration = _new_migration(instance, ctx, EVACUATION, "accepted", source, dest)
    session.add(migration)
    need = servers.flavor_need(instance.flavor)
    allocation = session.get(m.Allocation, instance.id)
    if allocation is None:
        placement.claim(session, instance.id, chosen, need)
    else:  # the dead host's share is released with the move
        allocation.host_id = dest.id
        allocation.vcpus, allocation.memory_mb, allocation.disk_gb = need
    instance.host_id = dest.id
    nics.follow_host(session, instance)
    instance.power_state = 0
    instance.reboot_kind = None
    if instance.vm_state == "error" or instance.desired_state not in ("active", "stopped"):
        instance.desired_state = "active"  # as Nova: an evacuated ERROR server comes up
    servers.ask(instance, None, "rebuilding")
    session.flush()
    return instance, migration


def open_evacuation(session: Session, instance_id: str, host_id: str) -> m.Migration | None:
    """The evacuation this host is rebuilding the server for, if any."""
    return session.scalars(
        select(m.Migration)
        .where(
            m.Migration.instance_uuid == instance_id,
            m.Migration.migration_type == EVACUATION,
            m.Migration.dest_host_id == host_id,
            m.Migration.dest_done.is_(False),
        )
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()


def evacuation_rebuilt(
    session: Session, instance: m.Instance, host_id: str, error: str | None
) -> None:
    """The destination reported on its rebuild: the migration is ``done`` (``completed``
    once the old host cleaned up too), or ``failed`` with the server in ERROR here."""
    migration = open_evacuation(session, instance.id, host_id)
    if migration is None:
        return
    migration.dest_done = True
    if error is not None:
        migration.status = "failed"
        migration.message = error[:4000]
    else:
        migration.status = "completed" if migration.source_done else "done"
    end_action(session, instance.id, "evacuate", f"Error: {error}" if error else None)


def evacuation_stuck(session: Session, instance: m.Instance) -> None:
    """The rebuild passed its deadline: the evacuation ends in ``error`` (the server is
    ERROR on the destination; the old host still cleans up when it comes back)."""
    if instance.host_id is None:
        return
    migration = open_evacuation(session, instance.id, instance.host_id)
    if migration is not None:
        migration.status = "error"
        migration.message = "the destination did not rebuild the server in time"
        migration.dest_done = True


def evacuation_cleaned(migration: m.Migration) -> None:
    """The old host destroyed its leftover guest and files."""
    migration.source_done = True
    if migration.status == "done":
        migration.status = "completed"


def servers_of_host(session: Session, ctx: Context, host_ref: str) -> tuple[m.Host, list[str]]:
    """The servers a host owns (``kumo host evacuate``), oldest first."""
    policy.enforce(ctx, "compute:evacuate")
    host = hosts.find_host(session, host_ref)
    ids = list(
        session.scalars(
            select(m.Instance.id)
            .where(m.Instance.host_id == host.id, m.Instance.deleted.is_(False))
            .order_by(m.Instance.created_at, m.Instance.id)
        )
    )
    return host, ids


# --- cold migrate -------------------------------------------------------------------------


def cold_migrate(
    session: Session,
    ctx: Context,
    server_id: str,
    cfg: SchedulerConfig,
    heartbeat_timeout: float,
) -> tuple[m.Instance, m.Migration]:
    """Record a cold migration and claim the destination, in one transaction; the source's
    agent starts it. Nova's checks: not locked (409 for non-admins), ACTIVE or STOPPED with
    no task (409), a destination of the same hypervisor driver with room (400)."""
    # Under the claims lock its operation declares (the runner takes it first), after the
    # runner checked the caller's right, the server's lock and its state.
    instance = servers.get(session, ctx, server_id)
    from kumo.core.volume import attachments  # block storage imports compute

    attachments.check_movable(session, instance)
    source = session.get(m.Host, instance.host_id) if instance.host_id else None
    if source is None:
        raise Conflict(f"Instance {server_id} is not ready")
    if not placement.can(source, "cold_migration"):
        raise BadRequest(f"Cold migration is not supported by the hypervisor of {source.name}.")
    chosen = placement.best_or_refuse(
        placement.select_for_move(session, cfg, heartbeat_timeout, instance, placement.COLD, source)
    )
    migration = _new_migration(instance, ctx, COLD, "pre-migrating", source, chosen.host)
    session.add(migration)
    placement.claim(session, migration.uuid, chosen, servers.flavor_need(instance.flavor))
    instance.old_flavor = instance.flavor  # as Nova: the same flavor on both sides
    servers.ask(instance, None, "resize_prep")
    session.flush()
    return instance, migration


def waiting_cold(session: Session, instance: m.Instance) -> m.Migration | None:
    """The server's cold migration waiting for confirm or revert (VERIFY_RESIZE)."""
    return session.scalars(
        select(m.Migration)
        .where(
            m.Migration.instance_uuid == instance.id,
            m.Migration.migration_type == COLD,
            m.Migration.status == "finished",
        )
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()


def _swap_claims(session: Session, instance: m.Instance, migration: m.Migration) -> None:
    """The server's allocation and the migration's trade places (the switch, or its
    reverse): the host the server now runs on is charged to the server."""
    mine = session.get(m.Allocation, instance.id)
    theirs = session.get(m.Allocation, migration.uuid)
    rows = [(a.host_id, a.vcpus, a.memory_mb, a.disk_gb) if a else None for a in (mine, theirs)]
    for row in (mine, theirs):
        if row is not None:
            session.delete(row)
    session.flush()
    for consumer, values in ((instance.id, rows[1]), (migration.uuid, rows[0])):
        if values is not None:
            host_id, vcpus, memory_mb, disk_gb = values
            session.add(
                m.Allocation(
                    instance_id=consumer,
                    host_id=host_id,
                    vcpus=vcpus,
                    memory_mb=memory_mb,
                    disk_gb=disk_gb,
                )
            )


def _drop_claim(session: Session, migration: m.Migration) -> None:
    claim = session.get(m.Allocation, migration.uuid)
    if claim is not None:
        session.delete(claim)


def confirm(session: Session, instance: m.Instance, migration: m.Migration) -> None:
    """Keep the server where it moved: the source's resources are released now, its copy
    is destroyed by its agent (``confirming`` until it says so)."""
    _drop_claim(session, migration)
    migration.status = "confirming"
    migration.dest_done = True


def revert(session: Session, instance: m.Instance, migration: m.Migration) -> None:
    """Back to the source: the destination destroys its copy first, then the server
    switches back and the source starts the guest it kept (task resize_reverting)."""
    migration.status = "reverting"
    servers.ask(instance, None, "resize_reverting")


def _end_cold_badly(
    session: Session,
    instance: m.Instance | None,
    migration: m.Migration,
    status: str,
    message: str,
) -> None:
    """Before the switch: the server stays on the source, whose agent starts the guest
    again (a new generation); the destination's claim is released."""
    migration.status = status
    migration.message = message[:4000]
    _drop_claim(session, migration)
    if instance is not None and instance.task_state in ("resize_prep", "resize_migrating"):
        instance.task_state = None
        instance.task_deadline = None
        instance.old_flavor = None
        instance.generation += 1
    if instance is not None:
        end_action(session, instance.id, "migrate", f"Error: {message}")


def cold_event(session: Session, migration: m.Migration, role: str, body: dict[str, Any]) -> None:
    """One agent's report on its part of a cold migration; idempotent."""
    event, status = body.get("event"), migration.status
    if event not in COLD_EVENTS:
        raise BadRequest(f"Expecting an event, one of {', '.join(COLD_EVENTS)}.")
    instance = session.get(m.Instance, migration.instance_uuid)
    if event == "exported":
        endpoint = body.get("endpoint")
        if role != "source" or not isinstance(endpoint, dict):
            raise BadRequest("Only the source reports its disk exported, with an endpoint.")
        if status == "pre-migrating":
            migration.dest_endpoint = endpoint
            migration.status = "migrating"
            if instance is not None and instance.task_state == "resize_prep":
                instance.task_state = "resize_migrating"
        elif status != "migrating":
            raise Conflict(f"Migration {migration.uuid} is {status}: too late to export.")
    elif event == "imported":
        if role != "dest":
            raise BadRequest("Only the destination reports the disk imported.")
        if status == "migrating" and instance is not None:
            _swap_claims(session, instance, migration)
            instance.host_id = migration.dest_host_id
            nics.follow_host(session, instance)
            instance.task_state = "resize_finish"
            instance.generation += 1
            instance.task_deadline = utcnow() + servers.TASK_DEADLINE
            migration.status = "finished"
            migration.switched_at = utcnow()
        elif status != "finished":
            raise Conflict(f"Migration {migration.uuid} is {status}: the server stays.")
    elif event == "failed":
        if status in COLD_BEFORE_SWITCH:
            _end_cold_badly(
                session,
                instance,
                migration,
                "failed",
                str(body.get("message") or "the move failed"),
            )
        elif status not in ("failed", "error"):
            raise Conflict(f"Migration {migration.uuid} is {status}: it cannot fail now.")
        if body.get("cleaned"):
            _mark_done(migration, role)
    elif event == "reverted":
        if role != "dest":
            raise BadRequest("Only the destination reports its copy gone on revert.")
        if status == "reverting" and instance is not None:
            _swap_claims(session, instance, migration)
            _drop_claim(session, migration)  # the destination's share
            instance.host_id = migration.source_host_id
            nics.follow_host(session, instance)
            instance.old_flavor = None
            instance.generation += 1  # the source starts the guest it kept
            migration.status = "reverted"
            migration.dest_done = True
        elif status != "reverted":
            raise Conflict(f"Migration {migration.uuid} is {status}: nothing to revert.")
    elif event == "cleaned":
        if status == "confirming" and role == "source":
            migration.status = "confirmed"
            if instance is not None:
                end_action(session, instance.id, "confirmResize", None)
        elif status not in ("confirmed", "reverted", "failed", "error"):
            raise Conflict(f"Migration {migration.uuid} is {status}: nothing to clean up yet.")
        _mark_done(migration, role)


def _mark_done(migration: m.Migration, role: str) -> None:
    if role == "source":
        migration.source_done = True
    else:
        migration.dest_done = True


def cold_stuck(session: Session, instance: m.Instance) -> None:
    """A cold migration step passed its deadline. Before the switch the server stays on
    the source (ERROR, its guest kept); after it (the destination never started the guest),
    the server is ERROR where it is and the source's copy and claim go."""
    migration = session.scalars(
        select(m.Migration)
        .where(
            m.Migration.instance_uuid == instance.id,
            m.Migration.migration_type == COLD,
            m.Migration.status.in_(COLD_HOLDS_CLAIM),
        )
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()
    if migration is None:
        return
    if migration.status in COLD_BEFORE_SWITCH:
        _end_cold_badly(session, instance, migration, "error", "the move did not finish in time")
        return
    _drop_claim(session, migration)
    migration.status = "error"
    migration.message = "the move did not finish in time"
    migration.dest_done = True
    instance.old_flavor = None

"""Moving a server between hosts: live migration and the migrations it records.

A live migration is a small state machine in one row (``migrations``), driven by the two
agents in turn, Ganeti style, and level-triggered like every other request (DESIGN.md 3.2):

    queued ──(dest agent: guest waits paused for the state)──> running
    running ──(source agent: memory and disks copied)──> post-migrating   (the switch)
    post-migrating ──(dest agent: guest continued)──> completed
    queued/running ──(failure, abort, deadline, delete)──> failed / cancelled / error

The switch is one transaction: ``instances.host_id`` becomes the destination and the claim
the destination held for the move becomes the server's allocation, the source's is freed.
The destination's guest runs only once the switch is committed (it waits paused), and the
source's guest is destroyed only after it; a failure before the switch leaves the guest on
the source and drops the destination's claim. So a crash of any party at any moment ends
with the guest on exactly one host. ``source_done``/``dest_done`` record that each agent
finished its part (cleaned up, or continued the guest), so a restarted agent knows what
is left to do.

Claims (DESIGN.md 3.4): the destination's resources are claimed when the migration is
recorded, in the same transaction, under the claims lock, as an allocation whose consumer
is the migration's UUID (Nova's placement holds a migration's resources the same way).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import policy
from kumo.core.compute import moves, nics, placement, servers
from kumo.core.compute.instance_actions import end_action
from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

LIVE = "live-migration"
# Nova's statuses for a move that is still under way (the ones /servers/{id}/migrations lists).
IN_PROGRESS = ("queued", "preparing", "running", "post-migrating")
# Before the switch the migration's UUID holds the destination's claim (`kumo db check`).
LIVE_HOLDS_CLAIM = ("queued", "preparing", "running")
ENDED_BADLY = ("failed", "error", "cancelled")
# How long a live migration may take from request to completion before the controller ends
# it (a guest that dirties memory faster than it can be copied never converges on its own).
MIGRATION_DEADLINE = dt.timedelta(minutes=15)
MIGRATING = "migrating"


@dataclass(frozen=True)
class LiveRequest:
    host: str | None
    block_migration: bool | str  # True, False or "auto"


def live_migrate(
    session: Session,
    ctx: Context,
    server_id: str,
    request: LiveRequest,
    cfg: SchedulerConfig,
    heartbeat_timeout: float,
) -> tuple[m.Instance, m.Migration]:
    """Record a live migration and claim the destination, in one transaction.

    The destination is the named host or the best host placement's filters leave (alive,
    enabled, same driver and able to live-migrate, the server's network types, room after
    allocation ratios, hard server-group policy, storage that fits ``block_migration``),
    never the source; a named host goes through the same filters. No destination: 400, as
    Nova answers before 2.34."""
    # Under the claims lock its operation declares (the runner takes it first), after the
    # runner checked the caller's right, the server's lock and its state.
    instance = servers.get(session, ctx, server_id)
    from kumo.core.volume import attachments  # block storage imports compute

    attachments.check_movable(session, instance)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    source = session.get(m.Host, instance.host_id)
    if source is None:
        raise Conflict(f"Instance {server_id} is on a host that is no longer registered")
    if not placement.can(source, "live_migration"):
        raise BadRequest(f"Live migration is not supported by the hypervisor of {source.name}.")
    named: m.Host | None = None
    if request.host is not None:
        named = session.scalars(select(m.Host).where(m.Host.name == request.host)).first()
        if named is None:
            raise BadRequest(f"Compute host {request.host} could not be found.")
        if named.id == source.id:
            raise BadRequest(
                f"Unable to migrate instance ({server_id}) to current host ({source.name})."
            )
    selection = placement.select_for_move(
        session,
        cfg,
        heartbeat_timeout,
        instance,
        placement.LIVE,
        source,
        named,
        request.block_migration,
    )
    chosen = selection.best
    if chosen is None:
        refusal = selection.refusal_of(named.id) if named is not None else None
        # Nova's answers for a named host: its service is down, or its storage disagrees.
        if refusal is not None and refusal.filter in placement.SERVICE_FILTERS:
            raise BadRequest(f"Compute service of {refusal.host.name} is unavailable at this time.")
        if refusal is not None and refusal.filter == "shared_storage":
            raise BadRequest(refusal.reason)
        raise placement.no_valid_host(selection)
    dest = chosen.host
    block = placement.block_for(source, dest, request.block_migration)
    migration = m.Migration(
        uuid=str(uuid.uuid4()),
        instance_uuid=instance.id,
        migration_type=LIVE,
        status="queued",
        source_host_id=source.id,
        dest_host_id=dest.id,
        source_compute=source.name,
        source_node=source.name,
        dest_compute=dest.name,
        dest_node=dest.name,
        old_flavor_id=instance.flavor_id,
        new_flavor_id=instance.flavor_id,
        block_migration=bool(block),
        user_id=ctx.user_id,
        project_id=instance.project_id,
    )
    session.add(migration)
    placement.claim(session, migration.uuid, chosen, selection.request.need)
    instance.task_state = MIGRATING
    instance.task_deadline = utcnow() + MIGRATION_DEADLINE
    session.flush()
    return instance, migration


# --- reading ---------------------------------------------------------------------------


def current(session: Session, instance_id: str) -> m.Migration | None:
    """The instance's latest migration that some agent still has work for."""
    return session.scalars(
        select(m.Migration)
        .where(
            m.Migration.instance_uuid == instance_id,
            m.Migration.deleted.is_(False),
            or_(m.Migration.source_done.is_(False), m.Migration.dest_done.is_(False)),
        )
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()


def in_progress(session: Session, instance_id: str) -> m.Migration | None:
    return session.scalars(
        select(m.Migration)
        .where(
            m.Migration.instance_uuid == instance_id,
            m.Migration.deleted.is_(False),
            m.Migration.status.in_(IN_PROGRESS),
        )
        .order_by(m.Migration.id.desc())
        .limit(1)
    ).first()


def _server_migration(
    session: Session, ctx: Context, server_id: str, migration_id: str, what: str
) -> tuple[m.Instance, m.Migration]:
    instance = servers.get(session, ctx, server_id)
    migration = None
    if migration_id.isdigit() and len(migration_id) <= 9:  # an INTEGER column's range
        migration = session.get(m.Migration, int(migration_id))
    if migration is None or migration.instance_uuid != instance.id or migration.deleted:
        raise NotFound(f"Migration {migration_id} could not be found for instance {server_id}.")
    return instance, migration


def list_for_server(session: Session, ctx: Context, server_id: str) -> list[m.Migration]:
    """The server's live migrations in progress (Nova lists no others here)."""
    policy.enforce(ctx, "compute:server_migrations:index")
    instance = servers.get(session, ctx, server_id)
    return list(
        session.scalars(
            select(m.Migration)
            .where(
                m.Migration.instance_uuid == instance.id,
                m.Migration.migration_type == LIVE,
                m.Migration.status.in_(IN_PROGRESS),
                m.Migration.deleted.is_(False),
            )
            .order_by(m.Migration.id.desc())
        )
    )


def show_for_server(
    session: Session, ctx: Context, server_id: str, migration_id: str
) -> m.Migration:
    policy.enforce(ctx, "compute:server_migrations:show")
    instance, migration = _server_migration(session, ctx, server_id, migration_id, "show")
    if migration.migration_type != LIVE:
        raise BadRequest(
            f"Migration {migration_id} for instance {instance.id} is not a live-migration."
        )
    if migration.status not in IN_PROGRESS:
        raise NotFound(f"Migration {migration_id} for instance {instance.id} is not in progress.")
    return migration


@dataclass
class ListFilters:
    host: str | None = None
    source_compute: str | None = None
    status: str | None = None
    instance_uuid: str | None = None
    migration_type: str | None = None


def list_all(session: Session, ctx: Context, f: ListFilters) -> list[m.Migration]:
    """/os-migrations: every migration (admin), newest first, with Nova's filters."""
    policy.enforce(ctx, "compute:migrations:index")
    query = select(m.Migration).where(m.Migration.deleted.is_(False))
    if f.host:
        query = query.where(
            or_(m.Migration.source_compute == f.host, m.Migration.dest_compute == f.host)
        )
    if f.source_compute:
        query = query.where(m.Migration.source_compute == f.source_compute)
    if f.status:
        query = query.where(m.Migration.status == f.status)
    if f.instance_uuid:
        query = query.where(m.Migration.instance_uuid == f.instance_uuid)
    if f.migration_type:
        query = query.where(m.Migration.migration_type == f.migration_type)
    return list(
        session.scalars(query.order_by(m.Migration.created_at.desc(), m.Migration.id.desc()))
    )


# --- force complete and abort -----------------------------------------------------------


def force_complete(
    session: Session, ctx: Context, server_id: str, migration_id: str
) -> tuple[m.Instance, m.Migration]:
    """Make a running live migration converge: the source pauses the guest (Nova's libvirt
    default; post-copy is not offered), so no memory is dirtied while the rest is copied."""
    instance, migration = _server_migration(session, ctx, server_id, migration_id, "force")
    if migration.migration_type != LIVE or migration.status != "running":
        raise BadRequest(
            f"Migration {migration.id} state of instance {instance.id} is "
            f"{migration.status}. Cannot force_complete while the migration is in this state."
        )
    migration.force_complete = True
    return instance, migration


def abort(
    session: Session, ctx: Context, server_id: str, migration_id: str
) -> tuple[m.Instance, m.Migration]:
    """Ask the source to cancel a running live migration; the guest stays where it was."""
    instance, migration = _server_migration(session, ctx, server_id, migration_id, "abort")
    if migration.migration_type != LIVE or migration.status != "running":
        raise BadRequest(
            f"Migration {migration.id} state of instance {instance.id} is "
            f"{migration.status}. Cannot abort live migration while the migration is in "
            "this state."
        )
    migration.abort_requested = True
    return instance, migration


# --- ending a migration -----------------------------------------------------------------


def _release_claim(session: Session, migration: m.Migration) -> None:
    claim = session.get(m.Allocation, migration.uuid)
    if claim is not None:
        session.delete(claim)


def end_badly(session: Session, migration: m.Migration, status: str, message: str | None) -> None:
    """Before the switch: the guest stays on the source, the destination's claim is
    released, the server's task ends (a new generation, so the source agent converges the
    guest to its desired state again, e.g. continues a guest paused by force_complete)."""
    if migration.status in ENDED_BADLY or migration.status in ("post-migrating", "completed"):
        return
    migration.status = status
    migration.message = (message or "")[:4000] or None
    _release_claim(session, migration)
    instance = session.get(m.Instance, migration.instance_uuid)
    if instance is not None and instance.task_state == MIGRATING:
        instance.task_state = None
        instance.task_deadline = None
        instance.generation += 1
        label = {"cancelled": "Cancelled", "failed": "Error", "error": "Error"}[status]
        end_action(session, instance.id, LIVE, f"{label}: {message}" if message else label)


def on_server_delete(session: Session, instance: m.Instance) -> None:
    """A server deleted while it moves: a migration before the switch ends (the agents
    clean up their halves); after it, the destination owns the server already."""
    migration = in_progress(session, instance.id)
    if migration is not None and migration.status != "post-migrating":
        end_badly(session, migration, "cancelled", "the server was deleted")


def on_server_gone(session: Session, instance: m.Instance, host_id: str) -> None:
    """The server's host destroyed it (deleted): a move it had finished taking over counts
    as done for that host; a destination's claim never outlives the server."""
    for migration in session.scalars(
        select(m.Migration).where(
            m.Migration.instance_uuid == instance.id, m.Migration.dest_host_id == host_id
        )
    ):
        if migration.status == "post-migrating":
            migration.status = "completed"
        migration.dest_done = True
        _release_claim(session, migration)


def _switch(session: Session, migration: m.Migration) -> None:
    """The guest's state reached the destination: it owns the server from now on."""
    instance = session.get(m.Instance, migration.instance_uuid)
    if instance is None:
        return
    claim = session.get(m.Allocation, migration.uuid)
    allocation = session.get(m.Allocation, instance.id)
    if claim is not None:
        if allocation is not None:
            session.delete(allocation)
            session.flush()
        session.add(
            m.Allocation(
                instance_id=instance.id,
                host_id=claim.host_id,
                vcpus=claim.vcpus,
                memory_mb=claim.memory_mb,
                disk_gb=claim.disk_gb,
            )
        )
        session.delete(claim)
    elif allocation is not None and migration.dest_host_id is not None:
        allocation.host_id = migration.dest_host_id
    instance.host_id = migration.dest_host_id
    nics.follow_host(session, instance)
    migration.status = "post-migrating"
    migration.switched_at = utcnow()


def stuck(session: Session, instance: m.Instance) -> None:
    """The controller found the server's migration past its deadline. Before the switch it
    ends in ``error`` (guest on the source); after it, the destination owns the guest and
    continues it when its agent is back, so only the task ends."""
    migration = in_progress(session, instance.id)
    instance.task_deadline = None
    if migration is None or migration.status != "post-migrating":
        if migration is not None:
            end_badly(session, migration, "error", "the live migration did not finish in time")
        instance.task_state = None
        return
    migration.status = "error"
    migration.message = "the destination did not continue the guest in time"
    instance.task_state = None
    end_action(session, instance.id, LIVE, "Error: the destination did not report in time")


# --- what agents see and say ------------------------------------------------------------


def agent_view(migration: m.Migration, host_id: str) -> dict[str, Any]:
    """The migration as one of its two agents sees it."""
    role = "source" if migration.source_host_id == host_id else "dest"
    return {
        "uuid": migration.uuid,
        "type": migration.migration_type,
        "role": role,
        "status": migration.status,
        "block_migration": migration.block_migration,
        "endpoint": migration.dest_endpoint,
        "force_complete": migration.force_complete,
        "abort": migration.abort_requested,
        "done": migration.source_done if role == "source" else migration.dest_done,
    }


def pending_for_host(session: Session, host_id: str) -> list[m.Migration]:
    """Migrations this host still has a part in."""
    return list(
        session.scalars(
            select(m.Migration).where(
                m.Migration.deleted.is_(False),
                or_(
                    (m.Migration.source_host_id == host_id) & m.Migration.source_done.is_(False),
                    (m.Migration.dest_host_id == host_id) & m.Migration.dest_done.is_(False),
                ),
            )
        )
    )


EVENTS = ("ready", "progress", "completed", "failed", "cancelled", "finished", "cleaned")
_PROGRESS_FIELDS = (
    "memory_total_bytes",
    "memory_processed_bytes",
    "memory_remaining_bytes",
    "disk_total_bytes",
    "disk_processed_bytes",
    "disk_remaining_bytes",
)


def _int_or_none(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"{field} must be a non-negative integer.")
    return value


def record_event(session: Session, host_id: str, migration_uuid: str, body: Any) -> dict[str, Any]:
    """One agent's report on its part of a migration; idempotent, so a report repeated after
    a lost answer changes nothing. Returns what the agent must know next (abort and
    force-complete requests reach a source that is busy copying this way)."""
    if not isinstance(body, dict):
        raise BadRequest(f"Expecting an object with event, one of {', '.join(EVENTS)}.")
    migration = session.scalars(
        select(m.Migration).where(m.Migration.uuid == migration_uuid)
    ).first()
    if migration is None or host_id not in (migration.source_host_id, migration.dest_host_id):
        raise NotFound(f"Migration {migration_uuid} has no part on host {host_id}.")
    role = "source" if migration.source_host_id == host_id else "dest"
    if migration.migration_type == moves.COLD:
        moves.cold_event(session, migration, role, body)
        return {"status": migration.status, "abort": False, "force_complete": False}
    if body.get("event") not in EVENTS:
        raise BadRequest(f"Expecting an object with event, one of {', '.join(EVENTS)}.")
    event = body["event"]
    status = migration.status
    if event == "ready":
        endpoint = body.get("endpoint")
        if role != "dest" or not isinstance(endpoint, dict):
            raise BadRequest("Only the destination reports ready, with an endpoint object.")
        if status in ("queued", "preparing"):
            migration.dest_endpoint = endpoint
            migration.dest_host = str(endpoint.get("host") or "")[:255] or None
            migration.status = "running"
        elif status != "running":
            raise Conflict(f"Migration {migration_uuid} is {status}: too late to be ready.")
    elif event == "progress":
        if role != "source":
            raise BadRequest("Only the source reports progress.")
        if status == "running":
            for field in _PROGRESS_FIELDS:
                if field in body:
                    setattr(migration, field, _int_or_none(body[field], field))
    elif event == "completed":
        if role != "source":
            raise BadRequest("Only the source reports the copy completed.")
        if status == "running":
            migration.total_time_ms = _int_or_none(body.get("total_time_ms"), "total_time_ms")
            migration.downtime_ms = _int_or_none(body.get("downtime_ms"), "downtime_ms")
            if migration.memory_total_bytes is not None:
                migration.memory_remaining_bytes = 0
                migration.memory_processed_bytes = migration.memory_total_bytes
            _switch(session, migration)
        elif status not in ("post-migrating", "completed"):
            raise Conflict(
                f"Migration {migration_uuid} is {status}; the guest stays on the source."
            )
    elif event in ("failed", "cancelled"):
        message = str(body.get("message") or "")
        end_badly(session, migration, "cancelled" if event == "cancelled" else "failed", message)
        if migration.status in ENDED_BADLY and body.get("cleaned"):
            _mark_done(migration, role)
        elif migration.status in ("post-migrating", "completed"):
            raise Conflict(f"Migration {migration_uuid} is {migration.status}: it cannot fail now.")
    elif event == "finished":
        if role != "dest":
            raise BadRequest("Only the destination reports the guest continued.")
        instance = session.get(m.Instance, migration.instance_uuid)
        if instance is None or instance.host_id != host_id:
            raise Conflict(f"Migration {migration_uuid}: the server is not on this host.")
        if status == "post-migrating":
            migration.status = "completed"
            if migration.downtime_ms is not None and migration.switched_at is not None:
                # What the guest lived through: QEMU's stop-and-copy plus the switch.
                waited = (utcnow() - migration.switched_at).total_seconds()
                migration.downtime_ms += max(0, int(waited * 1000))
            end_action(session, instance.id, LIVE, None)
        if instance.task_state == MIGRATING:
            instance.task_state = None
            instance.task_deadline = None
        migration.dest_done = True
    elif event == "cleaned" and migration.migration_type == moves.EVACUATION:
        if role != "source":
            raise BadRequest("Only the evacuated host cleans up after an evacuation.")
        moves.evacuation_cleaned(migration)
    elif event == "cleaned":
        done_ok = status in ENDED_BADLY or (
            role == "source" and status in ("post-migrating", "completed")
        )
        if not done_ok:
            raise Conflict(f"Migration {migration_uuid} is {status}: nothing to clean up yet.")
        _mark_done(migration, role)
    return {
        "status": migration.status,
        "abort": migration.abort_requested,
        "force_complete": migration.force_complete,
    }


def _mark_done(migration: m.Migration, role: str) -> None:
    if role == "source":
        migration.source_done = True
    else:
        migration.dest_done = True

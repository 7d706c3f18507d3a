"""`kumo db check`: invariants the database must hold, each with a safe repair if one exists.

Like OpenNebula's ``onedb fsck``: a readable list of problems, exit code 1 when any is found,
and ``--repair`` fixes the ones whose repair cannot lose data a human would want.

It lives in core, not db: the invariants are the domain's (which migrations hold a claim,
what a flavor claims) and so are the repairs (a stuck task is resolved by the same rule the
controller applies), and db must not know core (DESIGN.md section 7, an import-linter
contract in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kumo.core import usage_ledger
from kumo.core.compute import migrations, moves, servers
from kumo.core.compute import stuck as compute_stuck
from kumo.core.volume import attachments
from kumo.core.volume import stuck as volume_stuck
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.types import utcnow


@dataclass(frozen=True)
class Problem:
    check: str
    detail: str
    repairable: bool


@dataclass(frozen=True)
class Check:
    """``repair`` fixes in the checking transaction; ``by_operations``: the problem is
    repaired by lifecycle operations, each in its own transaction (repair_by_operations,
    after the check's)."""

    name: str
    find: Callable[[Session], list[str]]
    repair: Callable[[Session], None] | None
    by_operations: bool = False

    @property
    def repairable(self) -> bool:
        return self.repair is not None or self.by_operations


def _ids(session: Session, model: type[m.Base]) -> set[str]:
    return set(session.scalars(select(model.id)))  # type: ignore[attr-defined]


def _orphan_assignments(session: Session) -> list[m.RoleAssignment]:
    actors = {"user": _ids(session, m.User), "group": _ids(session, m.Group)}
    targets = {"project": _ids(session, m.Project), "domain": _ids(session, m.Domain)}
    return [
        ra
        for ra in session.scalars(select(m.RoleAssignment))
        if ra.actor_id not in actors.get(ra.actor_type, set())
        or ra.target_id not in targets.get(ra.target_type, set())
    ]


def _find_orphan_assignments(session: Session) -> list[str]:
    return [
        f"role assignment {ra.actor_type} {ra.actor_id} on {ra.target_type} "
        f"{ra.target_id} (role {ra.role_id}) names something that no longer exists"
        for ra in _orphan_assignments(session)
    ]


def _repair_orphan_assignments(session: Session) -> None:
    for ra in _orphan_assignments(session):
        session.delete(ra)


def _bad_default_projects(session: Session) -> list[m.User]:
    projects = _ids(session, m.Project)
    return [
        u
        for u in session.scalars(select(m.User).where(m.User.default_project_id.is_not(None)))
        if u.default_project_id not in projects
    ]


def _find_bad_default_projects(session: Session) -> list[str]:
    return [
        f"user {u.name} ({u.id}) has default project {u.default_project_id}, which does not exist"
        for u in _bad_default_projects(session)
    ]


def _repair_bad_default_projects(session: Session) -> None:
    for user in _bad_default_projects(session):
        user.default_project_id = None


def _orphan_app_creds(session: Session) -> list[m.ApplicationCredential]:
    projects = _ids(session, m.Project)
    return [
        c for c in session.scalars(select(m.ApplicationCredential)) if c.project_id not in projects
    ]


def _find_orphan_app_creds(session: Session) -> list[str]:
    return [
        f"application credential {c.name} ({c.id}) is bound to project {c.project_id}, "
        "which does not exist"
        for c in _orphan_app_creds(session)
    ]


def _repair_orphan_app_creds(session: Session) -> None:
    for cred in _orphan_app_creds(session):
        session.delete(cred)


def _find_expired_revocations(session: Session) -> list[str]:
    count = len(
        list(
            session.scalars(
                select(m.RevocationEvent.id).where(m.RevocationEvent.expires_at < utcnow())
            )
        )
    )
    return (
        [f"{count} token revocation events have outlived every token they could match"]
        if count
        else []
    )


def _repair_expired_revocations(session: Session) -> None:
    session.execute(delete(m.RevocationEvent).where(m.RevocationEvent.expires_at < utcnow()))


def _find_orphan_projects(session: Session) -> list[str]:
    ids = _ids(session, m.Project)
    return [
        f"project {p.name} ({p.id}) has parent {p.parent_id}, which does not exist"
        for p in session.scalars(select(m.Project).where(m.Project.parent_id.is_not(None)))
        if p.parent_id not in ids
    ]


def _repair_orphan_projects(session: Session) -> None:
    ids = _ids(session, m.Project)
    orphans = [
        p.id
        for p in session.scalars(select(m.Project).where(m.Project.parent_id.is_not(None)))
        if p.parent_id not in ids
    ]
    if orphans:
        session.execute(update(m.Project).where(m.Project.id.in_(orphans)).values(parent_id=None))


def _live_instances(session: Session) -> dict[str, m.Instance]:
    return {
        i.id: i for i in session.scalars(select(m.Instance).where(m.Instance.deleted.is_(False)))
    }


def _leaked_allocations(session: Session) -> list[m.Allocation]:
    live = set(_live_instances(session))
    # A migration in progress holds its destination's claim under its own UUID.
    live |= set(
        session.scalars(
            select(m.Migration.uuid).where(
                m.Migration.status.in_(migrations.LIVE_HOLDS_CLAIM + moves.COLD_HOLDS_CLAIM),
                m.Migration.instance_uuid.in_(live),
            )
        )
    )
    return [a for a in session.scalars(select(m.Allocation)) if a.instance_id not in live]


def _find_leaked_allocations(session: Session) -> list[str]:
    return [
        f"allocation of {a.vcpus} vCPU / {a.memory_mb} MiB on host {a.host_id} belongs "
        f"to server {a.instance_id}, which is deleted or gone"
        for a in _leaked_allocations(session)
    ]


def _repair_leaked_allocations(session: Session) -> None:
    for allocation in _leaked_allocations(session):
        session.delete(allocation)


def _unclaimed(session: Session) -> list[m.Instance]:
    claimed = {a.instance_id: a for a in session.scalars(select(m.Allocation))}
    return [
        i
        for i in _live_instances(session).values()
        if i.host_id is not None and (i.id not in claimed or claimed[i.id].host_id != i.host_id)
    ]


def _find_unclaimed(session: Session) -> list[str]:
    return [
        f"server {i.name} ({i.id}) runs on host {i.host_id} without a matching allocation"
        for i in _unclaimed(session)
    ]


def _repair_unclaimed(session: Session) -> None:
    for instance in _unclaimed(session):
        sizes = [servers.flavor_need(instance.flavor)]
        if instance.old_flavor:
            sizes.append(servers.flavor_need(instance.old_flavor))
        vcpus, ram, disk = (max(values) for values in zip(*sizes, strict=True))
        allocation = session.get(m.Allocation, instance.id)
        if allocation is None:
            session.add(
                m.Allocation(
                    instance_id=instance.id,
                    host_id=instance.host_id,
                    vcpus=vcpus,
                    memory_mb=ram,
                    disk_gb=disk,
                )
            )
        else:
            allocation.host_id = instance.host_id or allocation.host_id
            allocation.vcpus, allocation.memory_mb, allocation.disk_gb = vcpus, ram, disk


def _find_orphan_servers(session: Session) -> list[str]:
    hosts = _ids(session, m.Host)
    return [
        f"server {i.name} ({i.id}) is assigned to host {i.host_id}, which is not "
        "registered; evacuate or delete it"
        for i in _live_instances(session).values()
        if i.host_id is not None and i.host_id not in hosts
    ]


def _find_stuck_tasks(session: Session) -> list[str]:
    now = utcnow()
    return [
        f"server {i.name} ({i.id}) has been in task {i.task_state} past its deadline"
        for i in _live_instances(session).values()
        if i.task_deadline is not None and i.task_deadline < now
    ]


def _find_stuck_volumes(session: Session) -> list[str]:
    now = utcnow()
    late = [
        ("volume", v.id, v.status)
        for v in session.scalars(
            select(m.Volume).where(m.Volume.deleted.is_(False), m.Volume.task_deadline < now)
        )
    ] + [
        ("snapshot", s.id, s.status)
        for s in session.scalars(
            select(m.VolumeSnapshot).where(
                m.VolumeSnapshot.deleted.is_(False), m.VolumeSnapshot.task_deadline < now
            )
        )
    ]
    return [f"{what} {ident} has been {status} past its deadline" for what, ident, status in late]


def _repair_stuck_volumes(session: Session) -> None:
    volume_stuck.resolve_in_session(session)


def _orphan_attachments(session: Session) -> list[m.VolumeAttachment]:
    """Attachments to servers that are deleted (the server's delete let go of them all)."""
    live = set(_live_instances(session))
    return [
        a
        for a in session.scalars(
            select(m.VolumeAttachment).where(
                m.VolumeAttachment.deleted.is_(False), m.VolumeAttachment.plugged.is_(True)
            )
        )
        if a.instance_id not in live
    ]


def _find_orphan_attachments(session: Session) -> list[str]:
    return [
        f"volume {a.volume_id} is attached to server {a.instance_id}, which is deleted"
        for a in _orphan_attachments(session)
    ]


def _repair_orphan_attachments(session: Session) -> None:
    for row in _orphan_attachments(session):
        volume = session.get(m.Volume, row.volume_id)
        if volume is not None:
            attachments.detached(session, volume, row)


def _wrong_attach_status(session: Session) -> list[tuple[m.Volume, str]]:
    """Volumes whose status says in-use without an attachment, or available with one."""
    attached = {
        a.volume_id
        for a in session.scalars(
            select(m.VolumeAttachment).where(
                m.VolumeAttachment.deleted.is_(False),
                m.VolumeAttachment.status.in_(("attached", "detaching")),
            )
        )
    }
    wrong = []
    for volume in session.scalars(select(m.Volume).where(m.Volume.deleted.is_(False))):
        if volume.status == "in-use" and volume.id not in attached:
            wrong.append((volume, "available"))
        elif volume.status == "available" and volume.id in attached:
            wrong.append((volume, "in-use"))
    return wrong


def _find_wrong_attach_status(session: Session) -> list[str]:
    return [
        f"volume {v.id} is {v.status} but should be {right} (its attachments say so)"
        for v, right in _wrong_attach_status(session)
    ]


def _repair_wrong_attach_status(session: Session) -> None:
    for volume, right in _wrong_attach_status(session):
        volume.status = right


CHECKS: tuple[Check, ...] = (
    Check("orphaned role assignments", _find_orphan_assignments, _repair_orphan_assignments),
    Check(
        "users with a missing default project",
        _find_bad_default_projects,
        _repair_bad_default_projects,
    ),
    Check(
        "application credentials of deleted projects",
        _find_orphan_app_creds,
        _repair_orphan_app_creds,
    ),
    Check("projects with a missing parent", _find_orphan_projects, _repair_orphan_projects),
    Check("allocations of deleted servers", _find_leaked_allocations, _repair_leaked_allocations),
    Check("servers without their allocation", _find_unclaimed, _repair_unclaimed),
    Check("servers on unregistered hosts", _find_orphan_servers, None),
    Check("tasks past their deadline", _find_stuck_tasks, None, by_operations=True),
    Check("volume requests past their deadline", _find_stuck_volumes, _repair_stuck_volumes),
    Check(
        "volumes attached to deleted servers", _find_orphan_attachments, _repair_orphan_attachments
    ),
    Check(
        "volumes whose status disagrees with their attachments",
        _find_wrong_attach_status,
        _repair_wrong_attach_status,
    ),
    Check(
        "expired token revocation events", _find_expired_revocations, _repair_expired_revocations
    ),
    Check(
        "usage ledger out of step with the resources",
        usage_ledger.disagreements,
        usage_ledger.repair,
    ),
)


def run_checks(session: Session, repair: bool = False) -> list[Problem]:
    """Every problem found (before any repair); with ``repair`` the repairable are fixed,
    but for those repaired by operations: the caller runs repair_by_operations once the
    checking transaction is over."""
    problems: list[Problem] = []
    for check in CHECKS:
        found = check.find(session)
        problems += [Problem(check.name, detail, check.repairable) for detail in found]
        if found and repair and check.repair is not None:
            check.repair(session)
            session.flush()
    return problems


def repair_by_operations(db: Database) -> int:
    """The repairs that are lifecycle operations: stuck tasks are resolved by the domain's
    own rule, shared with the controller (recorded, their agents woken). How many."""
    return compute_stuck.resolve_all(db)

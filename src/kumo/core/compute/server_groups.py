"""Server groups: a placement policy shared by a set of servers (os-server-groups).

Membership is a row per server, written in the transaction that creates the server, under
the claims lock, so the server_group_members quota cannot be overrun by racing creates.
Members are only the group's live servers: a deleted server leaves its group at once, as
in Nova, without a second write (rows are filtered by ``instances.deleted`` when read).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.compute import quotas
from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.locking import lock_for_claims

HARD = ("affinity", "anti-affinity")
SOFT = ("soft-affinity", "soft-anti-affinity")


def create(session: Session, ctx: Context, name: str, policy: str) -> m.ServerGroup:
    """A new group of the caller's project (its name and policy checked by the API, in the
    caller's microversion), within the project's quota of groups."""
    if ctx.project_id is None:
        raise Forbidden("Server groups are created with a project-scoped token.")
    lock_for_claims(session, project_id=ctx.project_id)
    limit = quotas.limits(session, ctx.project_id)["server_groups"]
    used = count_groups(session, ctx.project_id)
    if limit != quotas.UNLIMITED and used + 1 > limit:
        raise Forbidden("Quota exceeded, too many server groups.")
    group = m.ServerGroup(
        id=str(uuid.uuid4()),
        name=name,
        project_id=ctx.project_id,
        user_id=ctx.user_id,
        policy=policy,
        rules={},
    )
    session.add(group)
    session.flush()
    return group


def count_groups(session: Session, project_id: str) -> int:
    query = select(func.count(m.ServerGroup.id)).where(m.ServerGroup.project_id == project_id)
    return int(session.execute(query).scalar_one())


def get(session: Session, ctx: Context, group_id: str) -> m.ServerGroup:
    """A group the caller may see (own project, or any for an admin); 404 otherwise."""
    group = session.get(m.ServerGroup, group_id)
    if group is None or not (ctx.is_admin or group.project_id == ctx.project_id):
        raise NotFound(f"Instance group {group_id} could not be found.")
    return group


def list_groups(
    session: Session, ctx: Context, all_projects: bool, limit: int | None, offset: int | None
) -> list[m.ServerGroup]:
    query = select(m.ServerGroup).order_by(m.ServerGroup.created_at, m.ServerGroup.id)
    if not (ctx.is_admin and all_projects):
        query = query.where(m.ServerGroup.project_id == ctx.project_id)
    if offset:
        query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def delete(session: Session, ctx: Context, group_id: str) -> None:
    group = get(session, ctx, group_id)
    # One statement first: the foreign key's cascade is not relied on (SQLite may lack it).
    session.execute(sql_delete(m.ServerGroupMember).where(m.ServerGroupMember.group_id == group.id))
    session.delete(group)


def members(session: Session, group_ids: list[str]) -> dict[str, list[str]]:
    """Live member servers of each group (deleted servers are no longer members)."""
    result: dict[str, list[str]] = {g: [] for g in group_ids}
    if not group_ids:
        return result
    rows = session.execute(
        select(m.ServerGroupMember.group_id, m.ServerGroupMember.instance_id)
        .join(m.Instance, m.Instance.id == m.ServerGroupMember.instance_id)
        .where(m.ServerGroupMember.group_id.in_(group_ids), m.Instance.deleted.is_(False))
        .order_by(m.Instance.created_at, m.Instance.id)
    )
    for group_id, instance_id in rows:
        result[group_id].append(instance_id)
    return result


def join(session: Session, ctx: Context, group_id: str, instances: list[m.Instance]) -> None:
    """Add new servers to a group, within their create transaction (claims lock held)."""
    try:
        group = get(session, ctx, group_id)
    except NotFound:
        raise BadRequest(f"Invalid server group: group {group_id} could not be found.") from None
    limit = quotas.limits(session, group.project_id)["server_group_members"]
    current = len(members(session, [group.id])[group.id])
    if limit != quotas.UNLIMITED and current + len(instances) > limit:
        raise Forbidden("Quota exceeded, too many servers in group")
    for instance in instances:
        session.add(m.ServerGroupMember(group_id=group.id, instance_id=instance.id))


@dataclass(frozen=True)
class Placement:
    """What a server's group asks of the scheduler: its policy and where peers run."""

    group_id: str
    policy: str
    peer_hosts: dict[str, int]  # host id -> live members already placed there

    @property
    def hard(self) -> bool:
        return self.policy in HARD


def placement_for(session: Session, instance_id: str) -> Placement | None:
    row = session.execute(
        select(m.ServerGroup.id, m.ServerGroup.policy)
        .join(m.ServerGroupMember, m.ServerGroupMember.group_id == m.ServerGroup.id)
        .where(m.ServerGroupMember.instance_id == instance_id)
    ).first()
    if row is None:
        return None
    group_id, policy = row
    peers: dict[str, int] = {}
    for host_id in session.scalars(
        select(m.Instance.host_id)
        .join(m.ServerGroupMember, m.ServerGroupMember.instance_id == m.Instance.id)
        .where(
            m.ServerGroupMember.group_id == group_id,
            m.Instance.id != instance_id,
            m.Instance.deleted.is_(False),
            m.Instance.host_id.is_not(None),
        )
    ):
        if host_id is not None:
            peers[host_id] = peers.get(host_id, 0) + 1
    return Placement(group_id, policy, peers)


def allows(placement: Placement, host_id: str) -> bool:
    """The hard filter: affinity keeps to the peers' host, anti-affinity avoids them."""
    if placement.policy == "affinity":
        return not placement.peer_hosts or host_id in placement.peer_hosts
    if placement.policy == "anti-affinity":
        return host_id not in placement.peer_hosts
    return True


def weight(placement: Placement, host_id: str) -> int:
    """The soft weigher: higher is better (more peers for soft-affinity, fewer for anti)."""
    peers = placement.peer_hosts.get(host_id, 0)
    if placement.policy == "soft-affinity":
        return peers
    if placement.policy == "soft-anti-affinity":
        return -peers
    return 0

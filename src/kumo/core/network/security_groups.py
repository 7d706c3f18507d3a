"""Security groups (Neutron): a project's named sets of allow rules applied to ports.

A member sees and changes its own project's groups; admins see all. Each project has a
``default`` group (kumo.core.network.default_group), made on the first request that needs
it; it keeps its name and only an admin may delete it. A group used by a port cannot be
deleted. Rules live in kumo.core.network.security_group_rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from kumo.core.errors import Conflict, NotFound
from kumo.core.network import quotas, standard, tags
from kumo.core.network.default_group import DEFAULT_NAME, default_group_id
from kumo.core.network.scope import owner_project
from kumo.core.policy import Context
from kumo.db import models as m

TAG_TYPE = "security_groups"
CREATE_ATTRS = frozenset({"name", "description", "stateful", "tags", "project_id", "tenant_id"})
UPDATE_ATTRS = frozenset({"name", "description", "stateful"})
ETHERTYPES = ("IPv4", "IPv6")


def not_found(group_id: str) -> NotFound:
    return NotFound(f"Security group {group_id} does not exist", kind="SecurityGroupNotFound")


def visible(ctx: Context, group: m.SecurityGroup) -> bool:
    return ctx.is_admin or group.project_id == ctx.project_id


def get_group(session: Session, ctx: Context, group_id: str) -> m.SecurityGroup:
    """The group, if the caller may see it (else 404, as if it did not exist)."""
    group = session.get(m.SecurityGroup, group_id) if isinstance(group_id, str) else None
    if group is None or not visible(ctx, group):
        raise not_found(str(group_id))
    return group


def ensure_default(session: Session, ctx: Context, project_id: str | None = None) -> None:
    """Neutron makes a project's default group on its first listing: for the project
    the listing names, else the caller's."""
    wanted = project_id or ctx.project_id
    if wanted and (ctx.is_admin or wanted == ctx.project_id):
        default_group_id(session, wanted)


def list_groups(
    session: Session, ctx: Context, project_filter: Iterable[str] = ()
) -> list[m.SecurityGroup]:
    wanted = [p for p in project_filter if p]
    ensure_default(session, ctx, wanted[0] if wanted else None)
    query = select(m.SecurityGroup).order_by(m.SecurityGroup.created_at, m.SecurityGroup.id)
    if not ctx.is_admin:
        query = query.where(m.SecurityGroup.project_id == ctx.project_id)
    elif wanted:
        query = query.where(m.SecurityGroup.project_id.in_(wanted))
    return list(session.scalars(query))


def default_ids(session: Session, group_ids: Iterable[str]) -> set[str]:
    """Which of these groups are a project's default group."""
    ids = list(group_ids)
    if not ids:
        return set()
    return set(
        session.scalars(
            select(m.DefaultSecurityGroup.security_group_id).where(
                m.DefaultSecurityGroup.security_group_id.in_(ids)
            )
        )
    )


def _check_name(name: str) -> None:
    if name.lower() == DEFAULT_NAME:
        raise Conflict(
            "Default security group already exists: every project has exactly one group "
            "named 'default'; choose another name.",
            kind="SecurityGroupDefaultAlreadyExists",
        )


def create_group(session: Session, ctx: Context, attrs: Mapping[str, Any]) -> m.SecurityGroup:
    attrs = dict(attrs)
    project_id = owner_project(ctx, attrs)
    quotas.check_quota(session, project_id, "security_group")
    quotas.check_quota(session, project_id, "security_group_rule", len(ETHERTYPES))
    name = standard.text(attrs, "name") or ""
    _check_name(name)
    description = standard.text(attrs, "description", standard.MAX_DESCRIPTION) or ""
    stateful = standard.boolean(attrs, "stateful")
    wanted_tags = standard.string_list(attrs, "tags")
    # Neutron makes the default group before any other of the project's.
    default_group_id(session, project_id)
    group = m.SecurityGroup(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=name,
        description=description,
        stateful=True if stateful is None else stateful,
    )
    session.add(group)
    session.flush()
    # As Neutron, a new group lets everything out (one egress rule per ethertype) and
    # nothing in.
    for ethertype in ETHERTYPES:
        session.add(
            m.SecurityGroupRule(
                id=str(uuid.uuid4()),
                security_group_id=group.id,
                project_id=project_id,
                direction="egress",
                ethertype=ethertype,
            )
        )
    session.flush()
    if wanted_tags:
        tags.replace_tags(session, TAG_TYPE, group.id, wanted_tags)
    return group


def in_use(session: Session, group_id: str) -> bool:
    return bool(
        session.scalar(select(exists().where(m.PortSecurityGroup.security_group_id == group_id)))
    )


def update_group(
    session: Session,
    ctx: Context,
    group_id: str,
    attrs: Mapping[str, Any],
) -> m.SecurityGroup:
    group = get_group(session, ctx, group_id)
    attrs = dict(attrs)
    if "name" in attrs:
        name = standard.text(attrs, "name") or ""
        _check_name(name)
        if group.id in default_ids(session, [group.id]):
            raise Conflict(
                "Updating default security group not allowed: its name stays 'default' "
                "(its description and rules may change).",
                kind="SecurityGroupCannotUpdateDefault",
            )
        group.name = name
    if "description" in attrs:
        group.description = standard.text(attrs, "description", standard.MAX_DESCRIPTION) or ""
    stateful = standard.boolean(attrs, "stateful")
    if stateful is not None:
        if stateful != group.stateful and in_use(session, group.id):
            raise Conflict(
                f"Security Group {group.id} in use: 'stateful' cannot change while ports "
                "use the group; remove it from its ports first.",
                kind="SecurityGroupInUse",
            )
        group.stateful = stateful
    standard.touch(group)
    return group


def delete_group(session: Session, ctx: Context, group_id: str) -> None:
    group = get_group(session, ctx, group_id)
    if in_use(session, group.id):
        raise Conflict(
            f"Security Group {group.id} in use: remove it from its ports before deleting it.",
            kind="SecurityGroupInUse",
        )
    if group.id in default_ids(session, [group.id]):
        if not ctx.is_admin:
            raise Conflict(
                "Insufficient rights for removing default security group.",
                kind="SecurityGroupCannotRemoveDefault",
            )
        session.execute(
            delete(m.DefaultSecurityGroup).where(
                m.DefaultSecurityGroup.security_group_id == group.id
            )
        )
    # Rules of this group, and other groups' rules naming it as their remote group, go
    # with it (as Neutron's foreign keys do).
    session.execute(
        delete(m.SecurityGroupRule).where(
            (m.SecurityGroupRule.security_group_id == group.id)
            | (m.SecurityGroupRule.remote_group_id == group.id)
        )
    )
    tags.drop_tags(session, TAG_TYPE, group.id)
    session.delete(group)

"""A project's ``default`` security group, created on first use with Neutron's rules: all
egress allowed, ingress only from members of the same group (IPv4 and IPv6)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.db import models as m

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"


def _rules(group: m.SecurityGroup) -> list[m.SecurityGroupRule]:
    rules = []
    for ethertype in ("IPv4", "IPv6"):
        rules.append(
            m.SecurityGroupRule(
                id=str(uuid.uuid4()),
                security_group_id=group.id,
                project_id=group.project_id,
                direction="egress",
                ethertype=ethertype,
            )
        )
        rules.append(
            m.SecurityGroupRule(
                id=str(uuid.uuid4()),
                security_group_id=group.id,
                project_id=group.project_id,
                direction="ingress",
                ethertype=ethertype,
                remote_group_id=group.id,
            )
        )
    return rules


def default_group_id(session: Session, project_id: str) -> str:
    """The id of the project's default group, creating it (once, also under racing first
    requests: the default_security_groups primary key lets one of them win) if needed."""
    found = session.execute(
        select(m.DefaultSecurityGroup.security_group_id).where(
            m.DefaultSecurityGroup.project_id == project_id
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    group = m.SecurityGroup(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=DEFAULT_NAME,
        description=DEFAULT_DESCRIPTION,
    )
    try:
        with session.begin_nested():
            session.add(group)
            session.flush()
            session.add(m.DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
            session.add_all(_rules(group))
            session.flush()
    except IntegrityError:
        # Another request created it first: use theirs.
        return session.execute(
            select(m.DefaultSecurityGroup.security_group_id).where(
                m.DefaultSecurityGroup.project_id == project_id
            )
        ).scalar_one()
    return group.id

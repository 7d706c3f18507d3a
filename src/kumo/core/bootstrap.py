"""First-run content of a cloud: default domain, the three roles, admin and demo projects.

Idempotent: ``kumo up`` runs it at every start and it only adds what is missing, so a
restart keeps everything and never resets a changed password.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.compute import flavors
from kumo.core.identity import resources, roles, users
from kumo.core.identity.auth import load_codec
from kumo.core.identity.catalog import ensure_kumo_services
from kumo.core.identity.common import DEFAULT_DOMAIN_ID
from kumo.db import models as m

ROLE_NAMES = ("admin", "member", "reader")


@dataclass(frozen=True)
class BootstrapResult:
    admin_user_id: str
    admin_project_id: str
    demo_project_id: str
    created_admin: bool


def _ensure_project(session: Session, name: str, description: str) -> m.Project:
    found = session.scalars(
        select(m.Project).where(m.Project.name == name, m.Project.domain_id == DEFAULT_DOMAIN_ID)
    ).first()
    return found or resources.create_project(
        session, {"name": name, "description": description}, DEFAULT_DOMAIN_ID
    )


def bootstrap(
    session: Session,
    admin_user: str,
    admin_password: str,
    admin_project: str,
    demo_project: str,
    public_url: str,
    region: str,
) -> BootstrapResult:
    if session.get(m.Domain, DEFAULT_DOMAIN_ID) is None:
        resources.create_domain(
            session,
            {"name": "Default", "description": "The default domain"},
            domain_id=DEFAULT_DOMAIN_ID,
        )
    role_ids = {}
    created_roles = set()
    for name in ROLE_NAMES:
        existing = roles.list_roles(session, name=name)
        if existing:
            role_ids[name] = existing[0].id
        else:
            role_ids[name] = roles.create_role(session, roles.RoleSpec(name=name)).id
            created_roles.add(name)
    # Default inference rules come with new roles only: an operator who removed one keeps
    # it removed across restarts.
    for prior, implied in (("admin", "member"), ("member", "reader")):
        if {prior, implied} & created_roles:
            roles.add_inference(session, role_ids[prior], role_ids[implied])
    admin_proj = _ensure_project(session, admin_project, "Cloud administration")
    demo_proj = _ensure_project(session, demo_project, "A project to try kumo in")
    user = session.scalars(
        select(m.User).where(m.User.name == admin_user, m.User.domain_id == DEFAULT_DOMAIN_ID)
    ).first()
    created = user is None
    if user is None:
        user = users.create_user(
            session,
            {"name": admin_user, "password": admin_password, "default_project_id": admin_proj.id},
            DEFAULT_DOMAIN_ID,
        )
    for project in (admin_proj, demo_proj):
        roles.grant(session, "user", user.id, "project", project.id, role_ids["admin"])
    roles.grant(session, "user", user.id, "domain", DEFAULT_DOMAIN_ID, role_ids["admin"])
    ensure_kumo_services(session, public_url, region)
    flavors.ensure_defaults(session)
    load_codec(session)
    return BootstrapResult(user.id, admin_proj.id, demo_proj.id, created)

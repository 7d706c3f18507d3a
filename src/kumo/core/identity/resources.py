"""Domains and projects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.identity.common import (
    DEFAULT_DOMAIN_ID,
    flush_unique,
    get_or_404,
    new_id,
    optional_bool,
    optional_str,
    require_str,
)
from kumo.core.identity.roles import drop_assignments
from kumo.db import models as m

_EXTRA_SKIP = {
    "id",
    "name",
    "description",
    "enabled",
    "domain_id",
    "parent_id",
    "tags",
    "is_domain",
    "links",
    "options",
}


def get_domain(session: Session, domain_id: str) -> m.Domain:
    return get_or_404(session, m.Domain, domain_id, "domain")


def find_domain(session: Session, ref: dict[str, Any]) -> m.Domain:
    """Resolve a ``{"id": ...}`` or ``{"name": ...}`` domain reference."""
    if not isinstance(ref, dict):
        raise BadRequest("Invalid domain reference: expected an object with 'id' or 'name'.")
    if ref.get("id"):
        return get_domain(session, str(ref["id"]))
    if ref.get("name"):
        domain = session.scalars(select(m.Domain).where(m.Domain.name == ref["name"])).first()
        if domain is None:
            raise NotFound(f"Could not find domain: {ref['name']}.")
        return domain
    raise BadRequest("Invalid domain reference: expected 'id' or 'name'.")


def list_domains(
    session: Session, name: str | None = None, enabled: bool | None = None
) -> list[m.Domain]:
    query = select(m.Domain).order_by(m.Domain.name)
    if name is not None:
        query = query.where(m.Domain.name == name)
    if enabled is not None:
        query = query.where(m.Domain.enabled == enabled)
    return list(session.scalars(query))


def create_domain(session: Session, body: dict[str, Any], domain_id: str | None = None) -> m.Domain:
    name = require_str(body, "name", "a domain", 64)
    domain = m.Domain(
        id=domain_id or new_id(),
        name=name,
        description=optional_str(body, "description", "") or "",
        enabled=optional_bool(body, "enabled", True),
        extra={k: v for k, v in body.items() if k not in _EXTRA_SKIP},
    )
    session.add(domain)
    flush_unique(session, "domain", name)
    return domain


def update_domain(session: Session, domain_id: str, body: dict[str, Any]) -> m.Domain:
    domain = get_domain(session, domain_id)
    if "id" in body and body["id"] != domain_id:
        raise BadRequest("Cannot change the domain ID.")
    if "name" in body:
        domain.name = require_str(body, "name", "a domain", 64)
    if "description" in body:
        domain.description = optional_str(body, "description", "") or ""
    if "enabled" in body:
        if domain_id == DEFAULT_DOMAIN_ID and body["enabled"] is False:
            raise Forbidden("The default domain cannot be disabled.")
        domain.enabled = optional_bool(body, "enabled", domain.enabled)
    flush_unique(session, "domain", domain.name)
    return domain


def delete_domain(session: Session, domain_id: str) -> None:
    domain = get_domain(session, domain_id)
    if domain.enabled:
        raise Forbidden("Cannot delete a domain that is enabled, please disable it first.")
    if domain_id == DEFAULT_DOMAIN_ID:
        raise Forbidden("The default domain cannot be deleted.")
    # Keystone deletes everything the domain owns; so do we, in one transaction.
    owned: list[m.User | m.Group | m.Project] = [
        *session.scalars(select(m.User).where(m.User.domain_id == domain_id)),
        *session.scalars(select(m.Group).where(m.Group.domain_id == domain_id)),
        *session.scalars(select(m.Project).where(m.Project.domain_id == domain_id)),
    ]
    for row in owned:
        _drop_assignments_for(session, row.id)
        session.delete(row)
    for role in session.scalars(select(m.Role).where(m.Role.domain_id == domain_id)):
        session.delete(role)
    _drop_assignments_for(session, domain_id)
    session.flush()
    session.delete(domain)


def _drop_assignments_for(session: Session, ident: str) -> None:
    drop_assignments(
        session, (m.RoleAssignment.actor_id == ident) | (m.RoleAssignment.target_id == ident)
    )


def get_project(session: Session, project_id: str) -> m.Project:
    return get_or_404(session, m.Project, project_id, "project")


def find_project(session: Session, ref: dict[str, Any]) -> m.Project:
    if not isinstance(ref, dict):
        raise BadRequest("Invalid project reference: expected an object with 'id' or 'name'.")
    if ref.get("id"):
        return get_project(session, str(ref["id"]))
    if ref.get("name"):
        if "domain" not in ref:
            raise BadRequest("A project name requires its domain (id or name).")
        domain = find_domain(session, ref["domain"])
        project = session.scalars(
            select(m.Project).where(m.Project.name == ref["name"], m.Project.domain_id == domain.id)
        ).first()
        if project is None:
            raise NotFound(f"Could not find project: {ref['name']}.")
        return project
    raise BadRequest("Invalid project reference: expected 'id' or 'name'.")


def list_projects(session: Session, filters: dict[str, Any]) -> list[m.Project]:
    query = select(m.Project).order_by(m.Project.name)
    if filters.get("name") is not None:
        query = query.where(m.Project.name == filters["name"])
    if filters.get("domain_id") is not None:
        query = query.where(m.Project.domain_id == filters["domain_id"])
    if filters.get("enabled") is not None:
        query = query.where(m.Project.enabled == filters["enabled"])
    if filters.get("parent_id") is not None:
        query = query.where(m.Project.parent_id == filters["parent_id"])
    if filters.get("ids") is not None:
        query = query.where(m.Project.id.in_(filters["ids"]))
    projects = list(session.scalars(query))
    if filters.get("tags"):
        wanted = set(filters["tags"])
        projects = [p for p in projects if wanted <= set(p.tags or [])]
    return projects


def _tags(body: dict[str, Any]) -> list[str]:
    tags = body.get("tags", [])
    if not isinstance(tags, list) or not all(
        isinstance(t, str) and 0 < len(t) <= 255 and "/" not in t and "," not in t for t in tags
    ):
        raise BadRequest(
            "Invalid input for field 'tags': a list of strings without '/' or ','"
            " of at most 255 characters is expected."
        )
    if len(tags) > 80:
        raise BadRequest("Invalid input for field 'tags': at most 80 tags are allowed.")
    return list(dict.fromkeys(tags))


# Projects acting as domains -------------------------------------------------------------
#
# In Keystone a domain is a project with is_domain=true (one table): POST /v3/projects with
# is_domain makes a domain, and every domain is also shown, updated and deleted through
# /v3/projects/{id}. Here domains keep their own table; these functions give them the
# project face: a project acting as a domain is a Domain row.


def acts_as_domain(body: dict[str, Any]) -> bool:
    return optional_bool(body, "is_domain", False)


def create_any_project(
    session: Session, body: dict[str, Any], default_domain_id: str
) -> m.Project | m.Domain:
    """POST /v3/projects: a project, or with ``is_domain`` a domain."""
    if acts_as_domain(body):
        return create_domain_project(session, body)
    return create_project(session, body, default_domain_id)


def create_domain_project(session: Session, body: dict[str, Any]) -> m.Domain:
    """A project acting as a domain: a root, so it names no parent and no domain (Keystone
    refuses either with a 400), and its name is unique among domains (409)."""
    name = require_str(body, "name", "a project", 64).strip()
    if optional_str(body, "parent_id") or optional_str(body, "domain_id"):
        raise BadRequest("only root projects are allowed to act as domains.")
    if body.get("tags"):
        raise BadRequest("Tags are not supported on a project acting as a domain.")
    if session.scalars(select(m.Domain.id).where(m.Domain.name == name)).first() is not None:
        raise Conflict(
            "Conflict occurred attempting to store project - it is not permitted to have two "
            f"projects acting as domains with the same name: {name}."
        )
    return create_domain(session, {**body, "name": name})


def get_any_project(session: Session, project_id: str) -> m.Project | m.Domain:
    """A project, or a domain (every domain is also a project acting as a domain)."""
    found = session.get(m.Project, project_id) or session.get(m.Domain, project_id)
    if found is None:
        raise NotFound(f"Could not find project: {project_id}.")
    return found


def update_any_project(
    session: Session, project_id: str, body: dict[str, Any]
) -> m.Project | m.Domain:
    found = get_any_project(session, project_id)
    if isinstance(found, m.Project):
        return update_project(session, project_id, body)
    if body.get("domain_id") is not None:
        raise BadRequest("Cannot change Domain ID")
    if body.get("parent_id") is not None:
        raise Forbidden("Update of `parent_id` is not allowed.")
    if "is_domain" in body and body["is_domain"] is not True:
        raise BadRequest("Update of `is_domain` is not allowed.")
    if body.get("tags"):
        raise BadRequest("Tags are not supported on a project acting as a domain.")
    return update_domain(session, project_id, body)


def delete_any_project(session: Session, project_id: str) -> None:
    """A project acting as a domain goes as a domain does: disabled first, with all it
    owns (Keystone's delete_project of an is_domain project)."""
    if isinstance(get_any_project(session, project_id), m.Domain):
        delete_domain(session, project_id)
    else:
        delete_project(session, project_id)


def list_domain_projects(session: Session, filters: dict[str, Any]) -> list[m.Domain]:
    """GET /v3/projects?is_domain=true: the domains, filtered as projects (a domain has no
    domain, parent or tags, so filtering on those finds none)."""
    if any(filters.get(k) for k in ("domain_id", "parent_id", "tags", "ids")):
        return []
    return list_domains(session, filters.get("name"), filters.get("enabled"))


def create_project(
    session: Session, body: dict[str, Any], default_domain_id: str, project_id: str | None = None
) -> m.Project:
    name = require_str(body, "name", "a project", 64)
    if acts_as_domain(body):
        raise BadRequest("A project acting as a domain is made by create_domain_project.")
    parent_id = optional_str(body, "parent_id")
    domain_id = optional_str(body, "domain_id") or None
    if parent_id and session.get(m.Domain, parent_id) is not None:
        # A top-level project's parent is its domain (Keystone shows and takes it so).
        if domain_id and domain_id != parent_id:
            raise BadRequest(
                f"Cannot create project, the parent ({parent_id}) is acting as a domain, but "
                f"this project's domain id ({domain_id}) does not match the parent's id."
            )
        domain_id, parent_id = parent_id, None
    if parent_id:
        parent = get_project(session, parent_id)
        if domain_id and domain_id != parent.domain_id:
            raise BadRequest("A project must be in the same domain as its parent.")
        domain_id = parent.domain_id
    domain_id = domain_id or default_domain_id
    if session.get(m.Domain, domain_id) is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    project = m.Project(
        id=project_id or new_id(),
        name=name,
        domain_id=domain_id,
        parent_id=parent_id,
        description=optional_str(body, "description", "") or "",
        enabled=optional_bool(body, "enabled", True),
        tags=_tags(body),
        extra={k: v for k, v in body.items() if k not in _EXTRA_SKIP},
    )
    session.add(project)
    flush_unique(session, "project", name)
    return project


def update_project(session: Session, project_id: str, body: dict[str, Any]) -> m.Project:
    project = get_project(session, project_id)
    for immutable in ("id", "domain_id", "parent_id", "is_domain"):
        if immutable in body and body[immutable] != getattr(project, immutable, None):
            if immutable == "is_domain" and body[immutable] is False:
                continue
            raise BadRequest(f"Cannot change the project's {immutable}.")
    if "name" in body:
        project.name = require_str(body, "name", "a project", 64)
    if "description" in body:
        project.description = optional_str(body, "description", "") or ""
    if "enabled" in body:
        project.enabled = optional_bool(body, "enabled", project.enabled)
    if "tags" in body:
        project.tags = _tags(body)
    extra = dict(project.extra or {})
    extra.update({k: v for k, v in body.items() if k not in _EXTRA_SKIP})
    project.extra = extra
    flush_unique(session, "project", project.name)
    return project


def delete_project(session: Session, project_id: str) -> None:
    project = get_project(session, project_id)
    children = session.scalars(select(m.Project.id).where(m.Project.parent_id == project_id))
    if children.first() is not None:
        raise Forbidden("Cannot delete a project that has child projects.")
    _drop_assignments_for(session, project_id)
    session.delete(project)


def project_tags(session: Session, project_id: str) -> list[str]:
    return list(get_project(session, project_id).tags or [])


def replace_project_tags(session: Session, project_id: str, tags: Any) -> list[str]:
    project = get_project(session, project_id)
    project.tags = _tags({"tags": tags})
    return list(project.tags)


def add_project_tag(session: Session, project_id: str, tag: str) -> None:
    project = get_project(session, project_id)
    project.tags = _tags({"tags": [*(project.tags or []), tag]})


def check_project_tag(session: Session, project_id: str, tag: str) -> None:
    if tag not in project_tags(session, project_id):
        raise NotFound(f"Project {project_id} has no tag {tag!r}.")


def remove_project_tag(session: Session, project_id: str, tag: str) -> None:
    check_project_tag(session, project_id, tag)
    project = get_project(session, project_id)
    project.tags = [t for t in project.tags if t != tag]

"""Keystone v3 JSON shapes for identity rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kumo.core.identity.auth import ValidatedToken
from kumo.core.identity.roles import Assignment
from kumo.db import models as m


def timestamp(value: dt.datetime | None) -> str | None:
    """Keystone's time format: ISO 8601, microseconds, Z."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def collection(name: str, items: list[dict[str, Any]], self_url: str) -> dict[str, Any]:
    return {name: items, "links": {"self": self_url, "previous": None, "next": None}}


def domain(d: m.Domain, base: str) -> dict[str, Any]:
    return {
        **(d.extra or {}),
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "enabled": d.enabled,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/domains/{d.id}"},
    }


def project(p: m.Project | m.Domain, base: str) -> dict[str, Any]:
    if isinstance(p, m.Domain):
        return _domain_as_project(p, base)
    return {
        **(p.extra or {}),
        "id": p.id,
        "name": p.name,
        "domain_id": p.domain_id,
        "description": p.description,
        "enabled": p.enabled,
        "parent_id": p.parent_id or p.domain_id,
        "is_domain": False,
        "tags": list(p.tags or []),
        "options": {},
        "links": {"self": f"{base}/projects/{p.id}"},
    }


def _domain_as_project(d: m.Domain, base: str) -> dict[str, Any]:
    """A domain through /v3/projects, as Keystone shows it: a root project acting as a
    domain, with no domain and no parent of its own."""
    return {
        **(d.extra or {}),
        "id": d.id,
        "name": d.name,
        "domain_id": None,
        "description": d.description,
        "enabled": d.enabled,
        "parent_id": None,
        "is_domain": True,
        "tags": [],
        "options": {},
        "links": {"self": f"{base}/projects/{d.id}"},
    }


def user(u: m.User, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(u.extra or {}),
        "id": u.id,
        "name": u.name,
        "domain_id": u.domain_id,
        "enabled": u.enabled,
        "password_expires_at": None,
        "options": dict(u.options or {}),
        "links": {"self": f"{base}/users/{u.id}"},
    }
    if u.default_project_id:
        body["default_project_id"] = u.default_project_id
    if u.description:
        body["description"] = u.description
    if u.email:
        body["email"] = u.email
    return body


def group(g: m.Group, base: str) -> dict[str, Any]:
    return {
        "id": g.id,
        "name": g.name,
        "domain_id": g.domain_id,
        "description": g.description,
        "links": {"self": f"{base}/groups/{g.id}"},
    }


def role(r: m.Role, base: str) -> dict[str, Any]:
    return {
        "id": r.id,
        "name": r.name,
        "domain_id": r.domain_id or None,
        "description": r.description or None,
        "options": {},
        "links": {"self": f"{base}/roles/{r.id}"},
    }


def app_cred(
    c: m.ApplicationCredential, roles: list[m.Role], base: str, secret: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": c.id,
        "name": c.name,
        "description": c.description or None,
        "user_id": c.user_id,
        "project_id": c.project_id,
        # Keystone echoes an application credential's expiry as given: naive ISO 8601.
        "expires_at": c.expires_at.isoformat() if c.expires_at else None,
        "unrestricted": c.unrestricted,
        "access_rules": list(c.access_rules or []),
        "system": None,
        "roles": [{"id": r.id, "name": r.name, "domain_id": r.domain_id or None} for r in roles],
        "links": {"self": f"{base}/users/{c.user_id}/application_credentials/{c.id}"},
    }
    if secret is not None:
        body["secret"] = secret
    return body


def assignment(
    a: Assignment,
    base: str,
    names: dict[str, str] | None = None,
    owners: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    target_path = "projects" if a.target_type == "project" else "domains"
    actor_path = "users" if a.actor_type == "user" else "groups"
    if a.via_group:
        link = f"{base}/{target_path}/{a.target_id}/groups/{a.via_group}/roles/{a.role_id}"
    else:
        link = f"{base}/{target_path}/{a.target_id}/{actor_path}/{a.actor_id}/roles/{a.role_id}"
    if a.inherited:
        link = (
            f"{base}/OS-INHERIT/{target_path}/{a.target_id}/{actor_path}/{a.actor_id}/"
            f"roles/{a.role_id}/inherited_to_projects"
        )
    role_ref: dict[str, Any] = {"id": a.role_id}
    actor_ref: dict[str, Any] = {"id": a.actor_id}
    target_ref: dict[str, Any] = {"id": a.target_id}
    if names is not None:
        role_ref["name"] = names.get(a.role_id)
        actor_ref["name"] = names.get(a.actor_id)
        target_ref["name"] = names.get(a.target_id)
    if owners:
        if a.actor_id in owners:
            actor_ref["domain"] = owners[a.actor_id]
        if a.target_type == "project" and a.target_id in owners:
            target_ref["domain"] = owners[a.target_id]
    scope: dict[str, Any] = {a.target_type: target_ref}
    if a.target_type == "system":
        scope = {"system": {"all": True}}
        link = f"{base}/system/{actor_path}/{a.actor_id}/roles/{a.role_id}"
    if a.inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
    body: dict[str, Any] = {
        "role": role_ref,
        a.actor_type: actor_ref,
        "scope": scope,
        "links": {"assignment": link},
    }
    if a.prior_role:
        body["links"]["prior_role"] = f"{base}/roles/{a.prior_role}"
    if a.via_group:
        body["links"]["membership"] = f"{base}/groups/{a.via_group}/users/{a.actor_id}"
    return body


def token(t: ValidatedToken, catalog: list[dict[str, Any]] | None) -> dict[str, Any]:
    p = t.payload
    body: dict[str, Any] = {
        "methods": p.methods,
        "user": {
            "id": t.user.id,
            "name": t.user.name,
            "domain": {"id": t.user_domain.id, "name": t.user_domain.name},
            "password_expires_at": None,
        },
        "audit_ids": p.audit_ids,
        "expires_at": timestamp(p.expires_at),
        "issued_at": timestamp(p.issued_at),
    }
    if t.project is not None and t.project_domain is not None:
        body["project"] = {
            "id": t.project.id,
            "name": t.project.name,
            "domain": {"id": t.project_domain.id, "name": t.project_domain.name},
        }
        body["is_domain"] = False
    elif t.domain is not None:
        body["domain"] = {"id": t.domain.id, "name": t.domain.name}
    elif t.system:
        body["system"] = {"all": True}
    if t.scoped:
        body["roles"] = [{"id": r.id, "name": r.name} for r in t.roles]
        if catalog is not None:
            body["catalog"] = catalog
    if t.app_cred is not None:
        body["application_credential"] = {
            "id": t.app_cred.id,
            "name": t.app_cred.name,
            "restricted": not t.app_cred.unrestricted,
        }
    return body

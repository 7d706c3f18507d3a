"""Users, groups and group membership."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, NotFound, Unauthorized
from kumo.core.identity import revocation
from kumo.core.identity.common import (
    flush_unique,
    get_or_404,
    new_id,
    optional_bool,
    optional_str,
    require_str,
)
from kumo.core.identity.resources import find_domain
from kumo.core.identity.roles import drop_assignments
from kumo.core.passwords import hash_secret, verify_secret
from kumo.db import models as m
from kumo.db.types import utcnow

_USER_FIELDS = {
    "id",
    "name",
    "domain_id",
    "enabled",
    "password",
    "default_project_id",
    "description",
    "email",
    "options",
    "links",
    "password_expires_at",
}
MAX_PASSWORD = 4096


def _password(body: dict[str, Any]) -> str | None:
    if "password" not in body or body["password"] is None:
        return None
    value = body["password"]
    if not isinstance(value, str):
        raise BadRequest("Invalid input for field 'password': expected a string.")
    if len(value) > MAX_PASSWORD:
        raise BadRequest(f"Invalid input for field 'password': longer than {MAX_PASSWORD}.")
    return value


def get_user(session: Session, user_id: str) -> m.User:
    return get_or_404(session, m.User, user_id, "user")


def find_user(session: Session, ref: Any) -> m.User:
    """Resolve an auth-request user reference; any miss is 401, never 404 (no user probing)."""
    if not isinstance(ref, dict):
        raise BadRequest("Invalid user reference: expected an object with 'id' or 'name'.")
    if ref.get("id"):
        user = session.get(m.User, str(ref["id"]))
    elif ref.get("name"):
        if "domain" not in ref:
            raise BadRequest("A user name requires its domain (id or name).")
        try:
            domain = find_domain(session, ref["domain"])
        except NotFound as exc:
            raise Unauthorized("The request you have made requires authentication.") from exc
        user = session.scalars(
            select(m.User).where(m.User.name == ref["name"], m.User.domain_id == domain.id)
        ).first()
    else:
        raise BadRequest("Invalid user reference: expected 'id' or 'name'.")
    if user is None:
        raise Unauthorized("The request you have made requires authentication.")
    return user


def list_users(session: Session, filters: dict[str, Any]) -> list[m.User]:
    query = select(m.User).order_by(m.User.name)
    for key in ("name", "domain_id", "enabled"):
        if filters.get(key) is not None:
            query = query.where(getattr(m.User, key) == filters[key])
    return list(session.scalars(query))


def create_user(session: Session, body: dict[str, Any], default_domain_id: str) -> m.User:
    name = require_str(body, "name", "a user", 255)
    domain_id = optional_str(body, "domain_id") or default_domain_id
    if session.get(m.Domain, domain_id) is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    password = _password(body)
    options = body.get("options")
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise BadRequest("Invalid input for field 'options': expected an object.")
    user = m.User(
        id=new_id(),
        name=name,
        domain_id=domain_id,
        enabled=optional_bool(body, "enabled", True),
        password_hash=hash_secret(password) if password is not None else None,
        password_created_at=utcnow() if password is not None else None,
        default_project_id=optional_str(body, "default_project_id"),
        description=optional_str(body, "description", "") or "",
        email=optional_str(body, "email", None, 255),
        options=options,
        extra={k: v for k, v in body.items() if k not in _USER_FIELDS},
    )
    session.add(user)
    flush_unique(session, "user", name)
    return user


def update_user(session: Session, user_id: str, body: dict[str, Any]) -> m.User:
    user = get_user(session, user_id)
    if "id" in body and body["id"] != user_id:
        raise BadRequest("Cannot change the user ID.")
    if "domain_id" in body and body["domain_id"] != user.domain_id:
        raise BadRequest("Cannot change the user's domain.")
    if "name" in body:
        user.name = require_str(body, "name", "a user", 255)
    if "description" in body:
        user.description = optional_str(body, "description", "") or ""
    if "email" in body:
        user.email = optional_str(body, "email", None, 255)
    if "default_project_id" in body:
        user.default_project_id = optional_str(body, "default_project_id")
    if "enabled" in body:
        enabled = optional_bool(body, "enabled", user.enabled)
        if user.enabled and not enabled:
            revocation.revoke_user(session, user.id)
        user.enabled = enabled
    password = _password(body)
    if password is not None:
        _set_password(session, user, password)
    extra = dict(user.extra or {})
    extra.update({k: v for k, v in body.items() if k not in _USER_FIELDS})
    user.extra = extra
    flush_unique(session, "user", user.name)
    return user


def _set_password(session: Session, user: m.User, password: str) -> None:
    user.password_hash = hash_secret(password)
    user.password_created_at = utcnow()
    revocation.revoke_user(session, user.id)


def change_password(session: Session, user_id: str, body: dict[str, Any]) -> None:
    user = get_user(session, user_id)
    original = body.get("original_password")
    new = body.get("password")
    if not isinstance(original, str) or not isinstance(new, str) or not new:
        raise BadRequest("Both 'original_password' and a non-empty 'password' are required.")
    if len(new) > MAX_PASSWORD:
        raise BadRequest(f"Invalid input for field 'password': longer than {MAX_PASSWORD}.")
    if not verify_secret(user.password_hash, original):
        raise Unauthorized("The request you have made requires authentication.")
    _set_password(session, user, new)


def delete_user(session: Session, user_id: str) -> None:
    user = get_user(session, user_id)
    drop_assignments(
        session, m.RoleAssignment.actor_type == "user", m.RoleAssignment.actor_id == user_id
    )
    revocation.revoke_user(session, user_id)
    session.delete(user)


def password_expires_at(user: m.User) -> dt.datetime | None:
    return None


# Groups ---------------------------------------------------------------------------------


def get_group(session: Session, group_id: str) -> m.Group:
    return get_or_404(session, m.Group, group_id, "group")


def list_groups(session: Session, filters: dict[str, Any]) -> list[m.Group]:
    query = select(m.Group).order_by(m.Group.name)
    for key in ("name", "domain_id"):
        if filters.get(key) is not None:
            query = query.where(getattr(m.Group, key) == filters[key])
    return list(session.scalars(query))


def create_group(session: Session, body: dict[str, Any], default_domain_id: str) -> m.Group:
    name = require_str(body, "name", "a group", 64)
    domain_id = optional_str(body, "domain_id") or default_domain_id
    if session.get(m.Domain, domain_id) is None:
        raise NotFound(f"Could not find domain: {domain_id}.")
    group = m.Group(
        id=new_id(),
        name=name,
        domain_id=domain_id,
        description=optional_str(body, "description", "") or "",
    )
    session.add(group)
    flush_unique(session, "group", name)
    return group


def update_group(session: Session, group_id: str, body: dict[str, Any]) -> m.Group:
    group = get_group(session, group_id)
    if "domain_id" in body and body["domain_id"] != group.domain_id:
        raise BadRequest("Cannot change the group's domain.")
    if "name" in body:
        group.name = require_str(body, "name", "a group", 64)
    if "description" in body:
        group.description = optional_str(body, "description", "") or ""
    flush_unique(session, "group", group.name)
    return group


def delete_group(session: Session, group_id: str) -> None:
    group = get_group(session, group_id)
    drop_assignments(
        session, m.RoleAssignment.actor_type == "group", m.RoleAssignment.actor_id == group_id
    )
    session.delete(group)


def group_members(session: Session, group_id: str) -> list[m.User]:
    get_group(session, group_id)
    return list(
        session.scalars(
            select(m.User)
            .join(m.GroupMembership, m.GroupMembership.user_id == m.User.id)
            .where(m.GroupMembership.group_id == group_id)
            .order_by(m.User.name)
        )
    )


def user_groups(session: Session, user_id: str) -> list[m.Group]:
    get_user(session, user_id)
    return list(
        session.scalars(
            select(m.Group)
            .join(m.GroupMembership, m.GroupMembership.group_id == m.Group.id)
            .where(m.GroupMembership.user_id == user_id)
            .order_by(m.Group.name)
        )
    )


def add_member(session: Session, group_id: str, user_id: str) -> None:
    get_group(session, group_id)
    get_user(session, user_id)
    if session.get(m.GroupMembership, (user_id, group_id)) is None:
        session.add(m.GroupMembership(user_id=user_id, group_id=group_id))


def remove_member(session: Session, group_id: str, user_id: str) -> None:
    get_group(session, group_id)
    get_user(session, user_id)
    membership = session.get(m.GroupMembership, (user_id, group_id))
    if membership is None:
        raise NotFound(f"User {user_id} is not a member of group {group_id}.")
    session.delete(membership)


def check_member(session: Session, group_id: str, user_id: str) -> None:
    get_group(session, group_id)
    get_user(session, user_id)
    if session.get(m.GroupMembership, (user_id, group_id)) is None:
        raise NotFound(f"User {user_id} is not a member of group {group_id}.")

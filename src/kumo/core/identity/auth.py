"""Authentication and token validation (Keystone v3 ``/auth/tokens`` semantics)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, NotFound, Unauthorized
from kumo.core.identity import appcreds, revocation
from kumo.core.identity.cache import TokenCache
from kumo.core.identity.resources import find_domain, find_project
from kumo.core.identity.roles import effective_roles, implied_closure
from kumo.core.identity.tokens import TokenCodec, TokenPayload, new_audit_id
from kumo.core.identity.users import find_user
from kumo.core.passwords import verify_secret
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db import revision
from kumo.db.types import utcnow

TOKEN_KEYS_SETTING = "token_keys"
_AUTH_FAILED = "The request you have made requires authentication."


def load_codec(session: Session) -> TokenCodec:
    """The token codec from the shared keys, creating the first key on a new cloud."""
    row = session.get(m.Setting, TOKEN_KEYS_SETTING)
    if row is None:
        row = m.Setting(key=TOKEN_KEYS_SETTING, value=json.dumps([TokenCodec.generate_key()]))
        session.add(row)
        session.flush()
    return TokenCodec(json.loads(row.value))


@dataclass
class ValidatedToken:
    """A token with everything its response body and policy checks need."""

    payload: TokenPayload
    user: m.User
    user_domain: m.Domain
    roles: list[m.Role] = field(default_factory=list)
    project: m.Project | None = None
    project_domain: m.Domain | None = None
    domain: m.Domain | None = None
    system: bool = False
    app_cred: m.ApplicationCredential | None = None

    @property
    def scoped(self) -> bool:
        return self.project is not None or self.domain is not None or self.system

    def context(self, request_id: str | None = None) -> Context:
        return Context(
            user_id=self.user.id,
            user_domain_id=self.user.domain_id,
            roles=frozenset(r.name for r in self.roles),
            project_id=self.project.id if self.project else None,
            project_domain_id=self.project.domain_id if self.project else None,
            domain_id=self.domain.id if self.domain else None,
            system=self.system,
            app_cred_id=self.app_cred.id if self.app_cred else None,
            app_cred_restricted=bool(self.app_cred and not self.app_cred.unrestricted),
            audit_ids=tuple(self.payload.audit_ids),
            request_id=request_id,
        )


def _enabled_user(session: Session, user: m.User) -> m.Domain:
    domain = session.get(m.Domain, user.domain_id)
    if not user.enabled or domain is None or not domain.enabled:
        raise Unauthorized(_AUTH_FAILED)
    return domain


class Scope(NamedTuple):
    project: m.Project | None = None
    domain: m.Domain | None = None
    system: bool = False


def _resolve_scope(session: Session, user: m.User, scope: Any) -> Scope:
    if scope is None:
        if user.default_project_id:
            project = session.get(m.Project, user.default_project_id)
            if (
                project is not None
                and project.enabled
                and effective_roles(session, user.id, project=project)
            ):
                return Scope(project)
        return Scope()
    if scope == "unscoped":
        return Scope()
    if not isinstance(scope, dict):
        raise BadRequest("Invalid scope: expected 'project', 'domain' or 'unscoped'.")
    try:
        if "project" in scope:
            return Scope(project=find_project(session, scope["project"]))
        if "domain" in scope:
            return Scope(domain=find_domain(session, scope["domain"]))
    except NotFound as exc:
        raise Unauthorized(exc.message) from exc
    if "system" in scope:
        if scope["system"] != {"all": True}:
            raise BadRequest('Invalid system scope: only {"all": true} exists.')
        return Scope(system=True)
    raise BadRequest("Invalid scope: expected 'project', 'domain' or 'unscoped'.")


def _scope_roles(session: Session, user: m.User, scope: Scope) -> list[m.Role]:
    project, domain = scope.project, scope.domain
    if scope.system:
        roles = effective_roles(session, user.id, system=True)
        if not roles:
            raise Unauthorized(f"User {user.id} has no role on the system.")
        return roles
    if project is None and domain is None:
        return []
    if project is not None:
        project_domain = session.get(m.Domain, project.domain_id)
        if not project.enabled or project_domain is None or not project_domain.enabled:
            raise Unauthorized(f"Project {project.id} is disabled.")
        roles = effective_roles(session, user.id, project=project)
    else:
        assert domain is not None
        if not domain.enabled:
            raise Unauthorized(f"Domain {domain.id} is disabled.")
        roles = effective_roles(session, user.id, domain_id=domain.id)
    if not roles:
        target = f"project {project.id}" if project else f"domain {domain.id}"  # type: ignore[union-attr]
        raise Unauthorized(f"User {user.id} has no access to {target}.")
    return roles


def authenticate(session: Session, codec: TokenCodec, body: Any, lifetime: int) -> str:
    """Check an auth request and return a new token string."""
    if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
        raise BadRequest("Expecting to find auth in request body.")
    auth = body["auth"]
    identity = auth.get("identity")
    if not isinstance(identity, dict):
        raise BadRequest("Expecting to find identity in auth.")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(x, str) for x in methods):
        raise BadRequest("Expecting to find methods in identity.")
    now = utcnow()
    expires = now + dt.timedelta(seconds=lifetime)
    audit_ids = [new_audit_id()]
    app_cred: m.ApplicationCredential | None = None
    method = methods[0]
    if method not in ("password", "token", "application_credential") or len(set(methods)) > 1:
        raise Unauthorized(f"Unsupported authentication method: {', '.join(methods)}.")
    data = identity.get(method)
    if not isinstance(data, dict):
        raise BadRequest(f"Expecting to find {method} in identity.")
    scope = auth.get("scope")

    if method == "password":
        user = find_user(session, data.get("user"))
        password = data["user"].get("password")
        if not isinstance(password, str) or not verify_secret(user.password_hash, password):
            raise Unauthorized(_AUTH_FAILED)
        _enabled_user(session, user)
        target = _resolve_scope(session, user, scope)
    elif method == "token":
        if not isinstance(data.get("id"), str):
            raise BadRequest("Expecting to find id in token.")
        try:
            parent = validate(session, codec, data["id"])
        except NotFound as exc:
            raise Unauthorized(_AUTH_FAILED) from exc
        if parent.app_cred is not None:
            raise Unauthorized("A token created from an application credential cannot be rescoped.")
        user = parent.user
        methods = list(dict.fromkeys([*parent.payload.methods, "token"]))
        expires = parent.payload.expires_at
        audit_ids.append(parent.payload.audit_ids[-1])
        target = _resolve_scope(session, user, scope or "unscoped")
    else:
        app_cred, user = _find_app_cred(session, data)
        if not verify_secret(app_cred.secret_hash, str(data.get("secret", ""))):
            raise Unauthorized(_AUTH_FAILED)
        _enabled_user(session, user)
        if scope is not None:
            raise Unauthorized("Application credentials cannot request a scope.")
        target = Scope(project=find_project(session, {"id": app_cred.project_id}))
        if app_cred.expires_at is not None:
            expires = min(expires, app_cred.expires_at)

    roles = _scope_roles(session, user, target)
    if app_cred is not None:
        allowed = set(app_cred.role_ids)
        if not any(r.id in allowed for r in roles):
            raise Unauthorized("The application credential's roles are no longer held.")
    payload = TokenPayload(
        user_id=user.id,
        methods=methods if method == "token" else [method],
        issued_at=now,
        expires_at=expires,
        audit_ids=audit_ids,
        project_id=target.project.id if target.project else None,
        domain_id=target.domain.id if target.domain else None,
        system=target.system,
        app_cred_id=app_cred.id if app_cred else None,
    )
    return codec.encode(payload)


def _find_app_cred(
    session: Session,
    data: dict[str, Any],
) -> tuple[m.ApplicationCredential, m.User]:
    if data.get("id"):
        cred = session.get(m.ApplicationCredential, str(data["id"]))
        if cred is None:
            raise Unauthorized(_AUTH_FAILED)
        user = session.get(m.User, cred.user_id)
        if user is None:
            raise Unauthorized(_AUTH_FAILED)
    elif data.get("name"):
        user = find_user(session, data.get("user"))
        cred = session.scalars(
            select(m.ApplicationCredential).where(
                m.ApplicationCredential.user_id == user.id,
                m.ApplicationCredential.name == data["name"],
            )
        ).first()
        if cred is None:
            raise Unauthorized(_AUTH_FAILED)
    else:
        raise BadRequest("Expecting to find id or name in application_credential.")
    if cred.expires_at is not None and cred.expires_at <= utcnow():
        raise Unauthorized("The application credential has expired.")
    return cred, user


def validate(
    session: Session, codec: TokenCodec, token: str, cache: TokenCache | None = None
) -> ValidatedToken:
    """Validate a token; an invalid, expired or revoked token is NotFound (the API turns
    that into 401 for the caller's own token and 404 for a subject token).

    With a cache, a token validated before at the current identity revision is answered
    from memory (its expiry still checked); the revision is read before validating, so a
    change made meanwhile can only make the entry stale, never wrong."""
    if cache is None:
        return _validate(session, codec, token)
    rev = revision.current(session)
    hit = cache.get(token, rev)
    if hit is not None and hit.payload.expires_at > utcnow():
        return hit
    result = _validate(session, codec, token)
    cache.put(token, rev, result)
    return result


def _validate(session: Session, codec: TokenCodec, token: str) -> ValidatedToken:
    try:
        payload = codec.decode(token)
    except Unauthorized as exc:
        raise NotFound("Failed to validate token") from exc
    if payload.expires_at <= utcnow():
        raise NotFound("The token has expired.")
    if revocation.is_revoked(session, payload):
        raise NotFound("The token has been revoked.")
    user = session.get(m.User, payload.user_id)
    if user is None:
        raise NotFound("Failed to validate token")
    try:
        user_domain = _enabled_user(session, user)
        result = ValidatedToken(payload=payload, user=user, user_domain=user_domain)
        if payload.project_id:
            result.project = session.get(m.Project, payload.project_id)
            if result.project is None:
                raise NotFound("Failed to validate token")
            result.project_domain = session.get(m.Domain, result.project.domain_id)
        elif payload.domain_id:
            result.domain = session.get(m.Domain, payload.domain_id)
            if result.domain is None:
                raise NotFound("Failed to validate token")
        result.system = payload.system
        result.roles = _scope_roles(
            session, user, Scope(result.project, result.domain, result.system)
        )
    except Unauthorized as exc:
        raise NotFound("Failed to validate token") from exc
    if payload.app_cred_id:
        cred = session.get(m.ApplicationCredential, payload.app_cred_id)
        if cred is None:
            raise NotFound("Failed to validate token")
        result.app_cred = cred
        delegated = implied_closure(session, {r.id for r in result.roles} & set(cred.role_ids))
        result.roles = [r for r in result.roles if r.id in delegated]
        if not result.roles:
            raise NotFound("Failed to validate token")
    return result


def revoke(session: Session, codec: TokenCodec, token: str) -> None:
    validated = validate(session, codec, token)
    revocation.revoke_token(session, validated.payload)


__all__ = ["ValidatedToken", "appcreds", "authenticate", "load_codec", "revoke", "validate"]

"""Keystone's stored credentials (/v3/credentials) and policy blobs (/v3/policies).

kumo keeps them for the clients that use them (EC2-style keys, TOTP seeds); it does not
interpret the blobs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict
from kumo.core.identity.common import get_or_404, new_id, optional_str
from kumo.db import models as m

_CRED_FIELDS = ("id", "user_id", "project_id", "type", "blob", "links")
_POLICY_FIELDS = ("id", "type", "blob", "links")


def _blob(body: dict[str, Any]) -> str:
    blob = body.get("blob")
    if not isinstance(blob, str) or not blob:
        raise BadRequest("Invalid input for field 'blob': a non-empty string is required.")
    return blob


def _ec2_id(blob: str) -> str | None:
    """EC2 credentials are addressed by the hash of their access key, as in Keystone."""
    try:
        access = json.loads(blob).get("access")
    except (ValueError, AttributeError):
        raise BadRequest(
            "Invalid input for field 'blob': an ec2 blob must be JSON with 'access' and 'secret'."
        ) from None
    return hashlib.sha256(str(access).encode()).hexdigest() if access else None


def list_credentials(
    session: Session, user_id: str | None = None, type_: str | None = None
) -> list[m.Credential]:
    query = select(m.Credential).order_by(m.Credential.id)
    if user_id is not None:
        query = query.where(m.Credential.user_id == user_id)
    if type_ is not None:
        query = query.where(m.Credential.type == type_)
    return list(session.scalars(query))


def get_credential(session: Session, cred_id: str) -> m.Credential:
    return get_or_404(session, m.Credential, cred_id, "credential")


def create_credential(session: Session, body: dict[str, Any]) -> m.Credential:
    user_id = optional_str(body, "user_id")
    type_ = optional_str(body, "type", max_len=255)
    if not user_id or not type_:
        raise BadRequest("A credential needs 'user_id', 'type' and 'blob'.")
    get_or_404(session, m.User, user_id, "user")
    blob = _blob(body)
    project_id = optional_str(body, "project_id")
    if type_ == "ec2" and not project_id:
        raise BadRequest("An ec2 credential needs a 'project_id'.")
    ident = (_ec2_id(blob) if type_ == "ec2" else None) or new_id()
    if session.get(m.Credential, ident) is not None:
        raise Conflict(f"Conflict occurred attempting to store credential - Duplicate ID, {ident}.")
    cred = m.Credential(
        id=ident,
        user_id=user_id,
        project_id=project_id,
        type=type_,
        blob=blob,
        extra={k: v for k, v in body.items() if k not in _CRED_FIELDS},
    )
    session.add(cred)
    return cred


def update_credential(session: Session, cred_id: str, body: dict[str, Any]) -> m.Credential:
    cred = get_credential(session, cred_id)
    if "user_id" in body:
        user_id = optional_str(body, "user_id") or ""
        get_or_404(session, m.User, user_id, "user")
        cred.user_id = user_id
    if "project_id" in body:
        cred.project_id = optional_str(body, "project_id")
    if "type" in body:
        cred.type = optional_str(body, "type", max_len=255) or cred.type
    if "blob" in body:
        cred.blob = _blob(body)
    cred.extra = {**(cred.extra or {}), **{k: v for k, v in body.items() if k not in _CRED_FIELDS}}
    return cred


def delete_credential(session: Session, cred_id: str) -> None:
    session.delete(get_credential(session, cred_id))


def list_policies(session: Session, type_: str | None = None) -> list[m.Policy]:
    query = select(m.Policy).order_by(m.Policy.id)
    if type_ is not None:
        query = query.where(m.Policy.type == type_)
    return list(session.scalars(query))


def get_policy(session: Session, policy_id: str) -> m.Policy:
    return get_or_404(session, m.Policy, policy_id, "policy")


def create_policy(session: Session, body: dict[str, Any]) -> m.Policy:
    type_ = optional_str(body, "type", max_len=255)
    if not type_:
        raise BadRequest("A policy needs 'type' and 'blob'.")
    policy = m.Policy(
        id=new_id(),
        type=type_,
        blob=_blob(body),
        extra={k: v for k, v in body.items() if k not in _POLICY_FIELDS},
    )
    session.add(policy)
    return policy


def update_policy(session: Session, policy_id: str, body: dict[str, Any]) -> m.Policy:
    policy = get_policy(session, policy_id)
    if "type" in body:
        policy.type = optional_str(body, "type", max_len=255) or policy.type
    if "blob" in body:
        policy.blob = _blob(body)
    policy.extra = {
        **(policy.extra or {}),
        **{k: v for k, v in body.items() if k not in _POLICY_FIELDS},
    }
    return policy


def delete_policy(session: Session, policy_id: str) -> None:
    session.delete(get_policy(session, policy_id))

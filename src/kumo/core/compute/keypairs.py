"""Key pairs: imported or generated public keys, owned by a user."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.compute import quotas
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.db import models as m
from kumo.db.locking import lock_for_claims

_NAME = re.compile(r"^[a-zA-Z0-9 _\-.@]{1,255}$")
_SSH_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ssh-dss",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


def fingerprint(public_key: str) -> str:
    """Nova's fingerprint: MD5 of the key blob, colon-separated hex."""
    parts = public_key.strip().split()
    if len(parts) < 2 or parts[0] not in _SSH_TYPES:
        raise BadRequest(
            "Keypair data is invalid: failed to parse the public key; expected "
            "an OpenSSH public key such as 'ssh-ed25519 AAAA... comment'."
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise BadRequest("Keypair data is invalid: the key body is not base64.") from None
    try:
        # A key that only looks right (base64 of junk) is refused too, as Nova does.
        serialization.load_ssh_public_key(f"{parts[0]} {parts[1]}".encode())
    except (ValueError, UnsupportedAlgorithm):
        raise BadRequest(
            "Keypair data is invalid: failed to generate fingerprint: the public key "
            f"is not a valid {parts[0]} key."
        ) from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def generate() -> tuple[str, str]:
    """A new RSA key pair: (OpenSSH public key, PEM private key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return public + " Generated-by-Nova", private


def generate_x509(user_id: str, project_id: str) -> tuple[str, str]:
    """A new x509 key pair as Nova makes one: (PEM self-signed certificate naming the user
    and project, PEM private key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, project_id or "kumo"),
            x509.NameAttribute(NameOID.COMMON_NAME, user_id or "kumo"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private


def x509_fingerprint(certificate: str) -> str:
    """Nova's x509 fingerprint: SHA-1 of the certificate, colon-separated hex."""
    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        raise BadRequest(
            "Keypair data is invalid: failed to generate fingerprint: the public key is "
            "not a PEM x509 certificate."
        ) from None
    digest = cert.fingerprint(hashes.SHA1()).hex()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@dataclass(frozen=True)
class KeyPairRequest:
    """A key pair to import (``public_key`` set) or generate, as the API parsed it
    (kumo.api.compute.keypairs.parse_create); the key itself is parsed here, after the
    quota check, so an over-quota request is refused before any key is read or made."""

    name: str
    type: str = "ssh"
    public_key: str | None = None


def check_name(name: Any) -> str:
    """Nova's key pair name: 1 to 255 of letters, digits, space and ``_-.@``."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequest(
            "Keypair data is invalid: Keypair name contains unsafe characters "
            "or is not 1 to 255 characters long."
        )
    return name


def create(
    session: Session, user_id: str, project_id: str, request: KeyPairRequest
) -> tuple[m.KeyPair, str | None]:
    name, key_type = request.name, request.type
    # Key pairs count against the project's key_pairs limit per user, as in Nova; under the
    # claims lock so two racing imports cannot both take the last one.
    lock_for_claims(session, project_id=project_id)
    if session.scalars(
        select(m.KeyPair.id).where(m.KeyPair.user_id == user_id, m.KeyPair.name == name)
    ).first():
        raise Conflict(f"Key pair '{name}' already exists.")
    limit = quotas.limits(session, project_id)["key_pairs"]
    if limit != quotas.UNLIMITED:
        owned = session.scalar(select(func.count(m.KeyPair.id)).where(m.KeyPair.user_id == user_id))
        if int(owned or 0) + 1 > limit:
            raise Forbidden("Quota exceeded, too many key pairs.")
    public = request.public_key
    private = None
    if public is None:
        public, private = generate() if key_type == "ssh" else generate_x509(user_id, project_id)
    key_fingerprint = fingerprint(public) if key_type == "ssh" else x509_fingerprint(public)
    # Stored as given (a final newline included), as Nova does: clients compare the key
    # they hold with what they read back (Ansible's keypair module fails on a difference).
    pair = m.KeyPair(
        name=name,
        user_id=user_id,
        project_id=project_id,
        type=key_type,
        public_key=public,
        fingerprint=key_fingerprint,
    )
    session.add(pair)
    session.flush()
    return pair, private


def get(session: Session, user_id: str, name: str) -> m.KeyPair:
    pair = session.scalars(
        select(m.KeyPair).where(m.KeyPair.user_id == user_id, m.KeyPair.name == name)
    ).first()
    if pair is None:
        raise NotFound(f"Keypair {name} not found for user {user_id}")
    return pair


def list_for_user(
    session: Session, user_id: str, limit: int | None = None, marker: str | None = None
) -> list[m.KeyPair]:
    rows = list(
        session.scalars(
            select(m.KeyPair).where(m.KeyPair.user_id == user_id).order_by(m.KeyPair.name)
        )
    )
    if marker is not None:
        names = [p.name for p in rows]
        if marker not in names:
            raise BadRequest(f"marker [{marker}] not found")
        rows = rows[names.index(marker) + 1 :]
    return rows[:limit] if limit is not None else rows


def delete(session: Session, user_id: str, name: str) -> None:
    session.delete(get(session, user_id, name))

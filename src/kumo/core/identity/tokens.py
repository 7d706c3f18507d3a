"""Token format: a Fernet-encrypted payload, so issuing a token writes nothing.

Keys live in the shared ``settings`` table, so every API copy validates every token. The
first key encrypts; all keys decrypt (room for rotation).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from kumo.core.errors import Unauthorized


def new_audit_id() -> str:
    """Keystone-style audit id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


@dataclass(frozen=True)
class TokenPayload:
    user_id: str
    methods: list[str]
    issued_at: dt.datetime
    expires_at: dt.datetime
    audit_ids: list[str]
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    app_cred_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


_EPOCH = dt.datetime(1970, 1, 1)


def _ts(value: dt.datetime) -> int:
    """Whole microseconds since the epoch: exact, so revocation comparisons never round."""
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


def _from_ts(value: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=int(value))


class TokenCodec:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one token key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encode(self, payload: TokenPayload) -> str:
        body = {
            "u": payload.user_id,
            "m": payload.methods,
            "i": _ts(payload.issued_at),
            "e": _ts(payload.expires_at),
            "a": payload.audit_ids,
        }
        if payload.project_id:
            body["p"] = payload.project_id
        if payload.domain_id:
            body["d"] = payload.domain_id
        if payload.system:
            body["s"] = 1
        if payload.app_cred_id:
            body["c"] = payload.app_cred_id
        raw = json.dumps(body, separators=(",", ":")).encode()
        return self._fernet.encrypt(raw).decode().rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        padded = token + "=" * (-len(token) % 4)
        try:
            body = json.loads(self._fernet.decrypt(padded.encode()))
        except (InvalidToken, ValueError, UnicodeError) as exc:
            raise Unauthorized("The request you have made requires authentication.") from exc
        return TokenPayload(
            user_id=body["u"],
            methods=list(body["m"]),
            issued_at=_from_ts(body["i"]),
            expires_at=_from_ts(body["e"]),
            audit_ids=list(body["a"]),
            project_id=body.get("p"),
            domain_id=body.get("d"),
            system=bool(body.get("s")),
            app_cred_id=body.get("c"),
        )

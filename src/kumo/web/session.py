"""The signed-in session: the user's Keystone token in an HttpOnly cookie.

The token is the whole session: nothing is kept server-side, so every API process serves
every user and revoking the token (sign-out, an admin, expiry) ends the session everywhere.
The cookie is HttpOnly (no script can read it), SameSite=Strict (no other site's page can
make the browser send it) and Secure when the public URL is https; the token never reaches
JavaScript or localStorage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import ApiClient
from kumo.web.settings import settings

COOKIE = "kumo_session"
SIGN_IN = "/auth/login"
EXPIRED_MESSAGE = "Your session expired or was revoked; sign in again."


class SignInRequired(Exception):
    """No session cookie: the page needs a signed-in user."""


@dataclass(frozen=True)
class Session:
    """Who is signed in, as Keystone's validation of the token says."""

    token: str
    user_id: str
    user_name: str
    domain_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...]
    expires_at: str

    @property
    def is_admin(self) -> bool:
        """Whether to offer admin pages and columns; the APIs' policies still decide."""
        return "admin" in self.roles

    @classmethod
    def from_token(cls, token: str, body: dict[str, Any]) -> Session:
        user = body.get("user", {})
        project = body.get("project") or {}
        return cls(
            token=token,
            user_id=str(user.get("id", "")),
            user_name=str(user.get("name", "")),
            domain_name=str((user.get("domain") or {}).get("name", "")),
            project_id=project.get("id"),
            project_name=project.get("name"),
            roles=tuple(sorted(str(r.get("name")) for r in body.get("roles", []))),
            expires_at=str(body.get("expires_at", "")),
        )


def session_token(request: Request) -> str:
    """The token of the session cookie; SignInRequired without one."""
    token = request.cookies.get(COOKIE, "")
    if not token:
        raise SignInRequired
    return token


async def current(api: ApiClient) -> Session:
    """The session of ``api``'s token, validated by Keystone (SessionExpired if it is not)."""
    assert api.token is not None
    return Session.from_token(api.token, await api.validate())


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings(request).secure_cookies,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings(request).secure_cookies,
    )

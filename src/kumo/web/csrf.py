"""Cross-site request forgery protection for every state-changing dashboard request.

With a session, the expected token is HMAC-SHA256 of a fixed label keyed by the session's
Keystone token: every API process computes the same value without shared configuration,
another site cannot compute it (it cannot read the HttpOnly cookie), and it changes with
each sign-in. Pages carry it in ``<meta name="csrf-token">`` and hidden form fields; htmx
sends it as the X-CSRF-Token header (``hx-headers`` on <body>).

Before sign-in there is no session to key it with, so the sign-in form uses a double
submit: a random value in a cookie of its own, repeated in the form. That is accepted only
on the sign-in route.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from kumo.web.forms import read_form
from kumo.web.session import COOKIE, SIGN_IN
from kumo.web.settings import settings

HEADER = "X-CSRF-Token"
FIELD = "csrf_token"
PRESESSION_COOKIE = "kumo_signin_csrf"
PRESESSION_PATHS = frozenset({SIGN_IN})  # the routes that may be posted without a session
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LABEL = b"kumo dashboard csrf v1"


class CsrfRefused(Exception):
    """The request changes state and does not carry the right CSRF token."""


def token_for(session_token: str) -> str:
    """The CSRF token of a session."""
    return hmac.new(session_token.encode(), _LABEL, hashlib.sha256).hexdigest()


def presession_token(request: Request) -> str:
    """The sign-in form's double-submit value: the browser's, or a new one (which
    :func:`keep_presession_token` then sets as the cookie)."""
    value = request.cookies.get(PRESESSION_COOKIE, "")
    return value if len(value) >= 32 else secrets.token_urlsafe(32)


def keep_presession_token(request: Request, response: Response, value: str) -> None:
    if request.cookies.get(PRESESSION_COOKIE) != value:
        response.set_cookie(
            PRESESSION_COOKIE,
            value,
            path=SIGN_IN,
            httponly=True,
            samesite="strict",
            secure=settings(request).secure_cookies,
        )


async def check(request: Request) -> None:
    """Refuse (CsrfRefused) a state-changing request without the right token."""
    if request.method in SAFE_METHODS:
        return
    given = request.headers.get(HEADER) or (await read_form(request)).get(FIELD, "")
    if not given:
        raise CsrfRefused("The request carries no CSRF token.")
    expected = []
    session = request.cookies.get(COOKIE, "")
    if session:
        expected.append(token_for(session))
    presession = request.cookies.get(PRESESSION_COOKIE, "")
    if request.url.path in PRESESSION_PATHS and len(presession) >= 32:
        expected.append(presession)
    if not any(hmac.compare_digest(given.encode(), e.encode()) for e in expected):
        raise CsrfRefused("The request's CSRF token is wrong for this session.")

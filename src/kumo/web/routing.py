"""Every dashboard route goes through :class:`DashboardRoute`: one place that checks CSRF,
turns failures into pages and sets the security headers, so no page can forget them.

- a state-changing request without the right CSRF token: a 403 page saying so;
- no session: a redirect to sign-in; an expired or revoked token (an API's 401): a redirect
  to sign-in with the message (htmx requests get ``HX-Redirect``, which htmx follows);
- an API's refusal (ApiError): an error page with the API's status and its own words;
- bad query parameters: a 400 page (never a 500, never FastAPI's JSON).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from kumo.web import csrf
from kumo.web.apiclient import ApiClient, ApiError, SessionExpired
from kumo.web.forms import FormTooLarge
from kumo.web.session import SIGN_IN, SignInRequired, clear_session_cookie, session_token
from kumo.web.templating import render

# connect-src 'self' also allows websockets to this origin (ws: and wss: match 'self'
# since CSP level 3, which Chromium and Firefox implement): the consoles need no more.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def secure(response: Response) -> Response:
    """Set the security headers of every dashboard response."""
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def redirect(request: Request, url: str) -> Response:
    """Go to ``url``: a 303 for a page, HX-Redirect for an htmx request (a redirect there
    would swap the target page into a fragment of this one)."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def call_then_redirect(
    request: Request,
    call: Callable[[ApiClient], Awaitable[object]],
    done: str,
    refused: Callable[[ApiClient, ApiError], Awaitable[Response]],
) -> Response:
    """A form's one change: ``call`` the APIs with the session's client; when an API
    refuses, ``refused`` renders the page again with the API's words and status (in
    place, with what was typed); else go to ``done`` (post/redirect/get)."""
    async with ApiClient(request, session_token(request)) as api:
        try:
            await call(api)
        except ApiError as exc:
            return await refused(api, exc)
    return redirect(request, done)


def to_sign_in(request: Request, reason: str | None = None) -> Response:
    url = SIGN_IN + ("?" + urlencode({"reason": reason}) if reason else "")
    response = redirect(request, url)
    clear_session_cookie(request, response)
    return response


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(
        request, "error.html", {"status": status, "title": title, "message": message}, status
    )


def _failure(request: Request, exc: Exception) -> Response | None:
    if isinstance(exc, csrf.CsrfRefused):
        return error_page(request, 403, "Request refused", f"{exc} Reload the page and try again.")
    if isinstance(exc, SignInRequired):
        return to_sign_in(request)
    if isinstance(exc, SessionExpired):
        return to_sign_in(request, "expired")
    if isinstance(exc, ApiError):
        return error_page(request, exc.status, "The request failed", exc.message)
    if isinstance(exc, RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_page(request, 400, "Bad request", f"Invalid {where}: {first.get('msg')}")
    if isinstance(exc, FormTooLarge):
        return error_page(request, 413, "Request too large", "The form is too large.")
    return None


class DashboardRoute(APIRoute):
    """An APIRoute that checks CSRF first and renders failures as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                await csrf.check(request)
                response = await handler(request)
            except Exception as exc:
                failed = _failure(request, exc)
                if failed is None:
                    raise
                response = failed
            return secure(response)

        return route


class DashboardStatic(StaticFiles):
    """The dashboard's static files, with the security headers too."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return secure(response)

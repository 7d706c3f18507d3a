"""Consoles in the browser: noVNC's page for Nova's ``novnc`` URL, an xterm.js page for the
serial console, and the server page's buttons that ask Nova for a fresh console URL.

``/console/vnc?token=T`` is the URL Nova's remote consoles API returns (kumo.api's
remote_consoles), so it must work opened straight from ``openstack console url show``:
it needs no dashboard session, the single-use token is the authorization (as with Nova's
novncproxy). The page only carries the token to its script; the websocket proxy
(``/console/websocket/{vnc,serial}``) consumes it and refuses a used or expired one.
The serial URL Nova returns stays a ws:// URL for clients; ``/console/serial?token=T`` is
the dashboard's terminal for the same token.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import COMPUTE, ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.routing import (
    CONTENT_SECURITY_POLICY,
    DashboardRoute,
    error_page,
    is_htmx,
    redirect,
)
from kumo.web.session import session_token
from kumo.web.templating import render

VNC_PAGE = "/console/vnc"
SERIAL_PAGE = "/console/serial"
SERVER_CONSOLE = "/project/instances/{server_id}/console"
# Console tokens are secrets.token_urlsafe(32): 43 characters of the URL-safe alphabet.
TOKEN = Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
# What each button asks Nova for (POST /servers/{id}/remote-consoles, 2.6+).
PROTOCOLS = {"vnc": "novnc", "serial": "serial"}
REMOTE_CONSOLES_VERSION = {"OpenStack-API-Version": "compute 2.6"}
# xterm.js writes its measured row height and theme into <style> elements it creates,
# which style-src 'self' refuses; the terminal page alone also allows inline styles.
# Scripts stay 'self' only, and the page shows nothing but the guest's bytes in the
# terminal (never parsed as HTML).
TERMINAL_CSP = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


class TerminalRoute(DashboardRoute):
    """DashboardRoute with the terminal page's Content-Security-Policy."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            response = await handler(request)
            if response.status_code == 200:
                response.headers["Content-Security-Policy"] = TERMINAL_CSP
            return response

        return route


router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
terminal = APIRouter(route_class=TerminalRoute, include_in_schema=False)


@router.get(VNC_PAGE)
async def vnc_page(request: Request, token: str = TOKEN) -> Response:
    """noVNC, full page, for the token in Nova's novnc URL."""
    context = {"title": "Graphical console", "socket": f"/console/websocket/vnc?token={token}"}
    return render(request, "consoles/vnc.html", context)


@terminal.get(SERIAL_PAGE)
async def serial_page(request: Request, token: str = TOKEN) -> Response:
    """xterm.js, full page, on the serial websocket of the token."""
    context = {"title": "Serial console", "socket": f"/console/websocket/serial?token={token}"}
    return render(request, "consoles/serial.html", context)


@router.post(SERVER_CONSOLE)
async def open_console(request: Request, server_id: str) -> Response:
    """Ask Nova for a fresh console URL of the server (the form's ``protocol``: vnc or
    serial) and go there; Nova's refusal (404 another project's server, 409 not running)
    in Nova's words: in place on the server page (htmx), else as the error page."""
    protocol = (await read_form(request)).get("protocol", "")
    if protocol not in PROTOCOLS:
        return error_page(request, 400, "Bad request", "Unknown console protocol.")
    async with ApiClient(request, session_token(request)) as api:
        try:
            response = await api.call(
                "POST",
                f"{COMPUTE}/servers/{segment(server_id)}/remote-consoles",
                json={"remote_console": {"protocol": protocol, "type": PROTOCOLS[protocol]}},
                headers=REMOTE_CONSOLES_VERSION,
            )
        except ApiError as exc:
            if not is_htmx(request):
                raise  # the error page, in Nova's words
            # On the server page, in place under the buttons (htmx swaps only 2xx answers).
            return render(request, "consoles/refused.html", {"message": exc.message})
    url = urlsplit(str(response.json()["remote_console"]["url"]))
    # Nova's serial URL is the websocket itself: the dashboard opens its terminal on it.
    # Both stay on the origin the browser is using (a path, not the public URL).
    page = VNC_PAGE if protocol == "vnc" else SERIAL_PAGE
    return redirect(request, f"{page}?{url.query}")

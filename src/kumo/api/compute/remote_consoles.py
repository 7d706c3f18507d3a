"""Remote consoles as Nova serves them: POST /servers/{id}/remote-consoles (2.6+), the
legacy os-getVNCConsole / os-getSerialConsole actions (2.1-2.5), and
GET /os-console-auth-tokens/{token} (admin).

The URLs point at kumo's own console proxy (kumo.api.console_proxy): noVNC's page at
``{public_url}/console/vnc?token=T`` (served by the dashboard) and the serial websocket at
``ws(s)://{public host}/console/websocket/serial?token=T``, as Nova's serial proxy hands
out a ws:// URL.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import consoles
from kumo.core.errors import NotFound
from kumo.core.microversion import APIVersion

router = APIRouter(prefix="/compute/v2.1")

# Legacy action -> the name Nova gives the request in a state conflict.
_ACTION_NAMES = {
    "os-getVNCConsole": "get_vnc_console",
    "os-getSPICEConsole": "get_spice_console",
    "os-getRDPConsole": "get_rdp_console",
    "os-getSerialConsole": "get_serial_console",
}
_PROTOCOL_ACTIONS = {"vnc": "get_vnc_console", "serial": "get_serial_console"}


def console_url(public_url: str, console_type: str, token: str) -> str:
    """The URL a client opens for a console: noVNC's page, or the serial websocket."""
    if console_type == "novnc":
        return f"{public_url}/console/vnc?token={token}"
    parts = urlsplit(public_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/console/websocket/serial"
    return urlunsplit((scheme, parts.netloc, path, f"token={token}", ""))


def _issue(state: AppState, who: Caller, server_id: str, req: consoles.Request, action: str) -> str:
    with state.db.session() as session:
        issued = consoles.issue(
            session, who.ctx, server_id, req, state.config.consoles.token_ttl, action
        )
    return console_url(state.config.public_url, issued.console_type, issued.token)


def legacy_action(
    state: AppState, who: Caller, server_id: str, action: str, args: Any
) -> JSONResponse:
    """os-getVNCConsole and friends (microversions 2.1 to 2.5): {"console": {type, url}}.
    The body is checked first, as Nova's schema runs before the server is looked up."""
    req = consoles.parse_legacy(action, args)
    url = _issue(state, who, server_id, req, _ACTION_NAMES[action])
    return JSONResponse({"console": {"type": req.console_type, "url": url}})


def is_legacy_action(action: str, version: APIVersion) -> bool:
    return action in consoles.LEGACY_ACTIONS and not version.at_least("2.6")


@router.post("/servers/{server_id}/remote-consoles")
def create_remote_console(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    if not version.at_least("2.6"):
        raise NotFound("The resource could not be found.")
    req = consoles.parse_remote_console(body, mks=version.at_least("2.8"))
    action = _PROTOCOL_ACTIONS.get(req.protocol, f"get_{req.protocol}_console")
    url = _issue(state, who, server_id, req, action)
    return {"remote_console": {"protocol": req.protocol, "type": req.console_type, "url": url}}


@router.get("/os-console-auth-tokens/{token}")
def show_console_auth_token(
    token: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    with state.db.session() as session:
        return consoles.show_token(session, who.ctx, token, version.at_least("2.31"))

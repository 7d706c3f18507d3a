"""The console proxy: websockets that carry a guest's VNC (RFB) or serial console bytes
between a browser (noVNC, xterm.js) or any websocket client and the guest's console on
its host, as Nova's novncproxy and serialproxy do, on the API's own listen address.

``/console/websocket/vnc?token=T`` and ``/console/websocket/serial?token=T``: the token
(from os-remote-consoles) is consumed before the handshake is accepted; an unknown, used,
expired or dead one gets the handshake refused (HTTP 403), so no byte of the guest reaches
a client without one. Frames are binary both ways (the ``binary`` subprotocol when the
client offers it, as noVNC does); text frames from a client are sent on as UTF-8.

A browser sends an ``Origin`` with every websocket handshake and lets any page open one, so
a page on another site could otherwise drive a console with a token it obtained; as Nova's
proxy does, a handshake whose ``Origin`` is neither this request's own host nor the cloud's
public URL is refused before the token is looked at (clients that send no ``Origin``, such
as the CLI's or a script's websocket library, are not browsers and are let through).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool

from kumo.api.state import AppState
from kumo.core.compute import consoles
from kumo.core.errors import NotFound
from kumo.core.identity.auth import validate
from kumo.core.policy import Context

log = logging.getLogger(__name__)
router = APIRouter()

CONNECT_TIMEOUT = 5.0  # seconds to reach the guest's console on its host
CHUNK = 64 * 1024
POLICY_VIOLATION = 1008  # websocket close code for a refused token
# The dashboard's session cookie (kumo.web.session.COOKIE; the API does not import the
# dashboard, a test checks the two agree).
SESSION_COOKIE = "kumo_session"


@router.websocket("/console/websocket/vnc")
async def vnc_websocket(websocket: WebSocket) -> None:
    await _proxy(websocket, "novnc")


@router.websocket("/console/websocket/serial")
async def serial_websocket(websocket: WebSocket) -> None:
    await _proxy(websocket, "serial")


def _consume(state: AppState, token: str, console_type: str, session_token: str) -> consoles.Target:
    with state.db.session() as session:
        return consoles.consume(session, token, console_type, _holder(state, session_token))


def _holder(state: AppState, session_token: str) -> Context | None:
    """The dashboard's signed-in user presenting the console token, if any."""
    if not session_token:
        return None
    try:
        with state.db.session() as session:
            return validate(session, state.codec, session_token, state.token_cache).context()
    except NotFound:  # expired or revoked: no signed-in user
        return None


def same_origin(origin: str | None, host: str | None, public_url: str) -> bool:
    """Whether a handshake's ``Origin`` names this cloud: the host (and port) the browser
    reached (its ``Host`` header) or the public URL's; no ``Origin``, no browser."""
    if origin is None:
        return True
    netloc = urlsplit(origin).netloc.lower()
    allowed = {urlsplit(public_url).netloc.lower()}
    if host:
        allowed.add(host.lower())
    return bool(netloc) and netloc in allowed


async def _proxy(websocket: WebSocket, console_type: str) -> None:
    state: AppState = websocket.app.state.kumo
    origin = websocket.headers.get("origin")
    if not same_origin(origin, websocket.headers.get("host"), state.config.public_url):
        log.info("console %s refused: websocket from another origin %s", console_type, origin)
        await websocket.close(code=POLICY_VIOLATION, reason="origin not allowed")
        return
    token = websocket.query_params.get("token", "")
    try:
        session_token = websocket.cookies.get(SESSION_COOKIE, "")
        target = await run_in_threadpool(_consume, state, token, console_type, session_token)
    except consoles.Refused as exc:
        log.info("console %s refused: %s", console_type, exc)
        await websocket.close(code=POLICY_VIOLATION, reason="invalid token")
        return
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.address, target.port), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        log.warning("console of %s unreachable: %s", target.instance_id, exc)
        await websocket.close(code=1011, reason="console unreachable")
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    try:
        await _pump(websocket, reader, writer)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
        with contextlib.suppress(Exception):
            await websocket.close()


async def _pump(
    websocket: WebSocket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Copy both ways until either side closes."""

    async def from_guest() -> None:
        while data := await reader.read(CHUNK):
            await websocket.send_bytes(data)

    async def to_guest() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                data = (message.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.ensure_future(from_guest()), asyncio.ensure_future(to_guest())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:  # a side that closed or failed ends the session either way
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

"""Refuse NUL characters in request URLs before any handler sees them.

PostgreSQL cannot hold a NUL in a text value: a name, filter or id with ``%00`` in it made
the query fail inside the database driver and the client got a 500. SQLite and MariaDB
would store it, so one cloud would behave three ways; kumo refuses it everywhere with a 400
in the service's own error shape. Bodies are checked where they are parsed
(``kumo.api.body.json_body``); this covers the path and the query string.

A plain ASGI middleware, like ``request_id``: one substring test per request.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from kumo.api.errors import error_response

MESSAGE = (
    "The request URL contains a NUL character (%00); kumo does not accept it in names, "
    "ids or filters. Remove it and send the request again."
)


def _has_nul(scope: Scope) -> bool:
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    return b"%00" in raw_path or "\x00" in scope["path"] or b"%00" in scope["query_string"]


class RefuseNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _has_nul(scope):
            response = error_response(Request(scope), 400, MESSAGE)
            await response(scope, receive, send)
            return
        if scope["type"] == "websocket" and _has_nul(scope):
            await send({"type": "websocket.close", "code": 1008, "reason": MESSAGE[:120]})
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)

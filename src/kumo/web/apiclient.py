"""The dashboard's one way to reach kumo: its public APIs, called in process.

Each page opens an :class:`ApiClient` on the running application (httpx's ASGI transport,
no socket, no second server) with the signed-in user's token, so a page can do exactly
what the openstack CLI can with that token and the APIs' policies decide everything.
An API's refusal is raised as :class:`ApiError` with the API's own words (the ``message``
of its OpenStack error body) for the page to show in place; a 401 is
:class:`SessionExpired`, which sends the user back to sign-in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from starlette.requests import Request

from kumo.web.settings import settings

IDENTITY = "/identity/v3"
COMPUTE = "/compute/v2.1"
IMAGE = "/image/v2"
# The newest behaviour of every API: a server shows its tags once Nova's 2.26 is served,
# its flavor's name from 2.47, without the dashboard changing.
COMPUTE_VERSION = {"OpenStack-API-Version": "compute latest"}


class ApiError(Exception):
    """An API refused the request: its status and its own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class SessionExpired(Exception):
    """The API answered 401: the session's token expired or was revoked."""


def error_message(body: Any, fallback: str) -> str:
    """The ``message`` of an OpenStack error body, whatever the service's shape: Keystone's
    ``{"error": {...}}``, Nova's and Cinder's ``{"itemNotFound": {...}}``, Neutron's
    ``{"NeutronError": {...}}`` and Glance's flat ``{"message": ...}``."""
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return str(body["message"])
        for value in body.values():
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    return fallback


def segment(value: str) -> str:
    """``value`` as one path segment: a page's path parameter cannot reach another API
    path or add a query (``..``, ``/``, ``?`` are escaped)."""
    quoted = quote(value, safe="")
    return quoted.replace(".", "%2E") if quoted.strip(".") == "" else quoted


@dataclass(frozen=True)
class Issued:
    """A token Keystone issued, with its token body."""

    token: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Page:
    """One page of a paginated list, with the marker of the next (None on the last)."""

    items: list[dict[str, Any]]
    next_marker: str | None


class ApiClient:
    """kumo's APIs as the holder of ``token`` (None before sign-in) sees them.

    One per dashboard request (``async with ApiClient(request, token) as api``); the typed
    helpers below are the calls pages make, :meth:`call` is there for the rest."""

    def __init__(self, request: Request, token: str | None) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["X-Auth-Token"] = token
        self.token = token
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=request.app),
            base_url=settings(request).public_url,
            headers=headers,
            trust_env=False,  # no proxy settings from the environment: nothing leaves
            timeout=60.0,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._http.aclose()

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        session_401: bool = True,
        content: AsyncIterator[bytes] | None = None,
    ) -> httpx.Response:
        """One API call; a 4xx or 5xx answer is raised. A 401 is SessionExpired, unless
        ``session_401`` is False: then it answers the request itself (a token request that
        Keystone refused), not the session's token. ``content`` is a body sent as it comes
        (an upload passed through chunk by chunk, never held whole)."""
        response = await self._http.request(
            method, path, json=json, params=params, headers=headers, content=content
        )
        if response.status_code < 400:
            return response
        if response.status_code == 401 and self.token and session_401:
            raise SessionExpired
        try:
            body = response.json()
        except ValueError:
            body = None
        raise ApiError(response.status_code, error_message(body, response.reason_phrase))

    async def get(
        self, path: str, params: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.call("GET", path, params=params, headers=headers)
        found: dict[str, Any] = response.json()
        return found

    # Identity ------------------------------------------------------------------------

    async def password_token(
        self, user: str, password: str, domain: str, project_id: str | None = None
    ) -> Issued:
        """Sign in by name: scoped to ``project_id``, else as Keystone decides (the
        user's default project, or unscoped)."""
        auth: dict[str, Any] = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": user, "domain": {"name": domain}, "password": password}
                },
            }
        }
        if project_id:
            auth["scope"] = {"project": {"id": project_id}}
        return await self._issue(auth)

    async def rescope(self, project_id: str) -> Issued:
        """A token for ``project_id`` from this one (Keystone's token method)."""
        auth = {
            "identity": {"methods": ["token"], "token": {"id": self.token}},
            "scope": {"project": {"id": project_id}},
        }
        return await self._issue(auth)

    async def _issue(self, auth: dict[str, Any]) -> Issued:
        response = await self.call(
            "POST",
            f"{IDENTITY}/auth/tokens",
            params={"nocatalog": ""},
            json={"auth": auth},
            session_401=False,
        )
        return Issued(response.headers["X-Subject-Token"], response.json()["token"])

    async def validate(self) -> dict[str, Any]:
        """This token's body (user, project, roles), as Keystone validates it."""
        assert self.token is not None
        body = await self.get(
            f"{IDENTITY}/auth/tokens",
            params={"nocatalog": ""},
            headers={"X-Subject-Token": self.token},
        )
        token: dict[str, Any] = body["token"]
        return token

    async def revoke(self) -> None:
        assert self.token is not None
        await self.call(
            "DELETE", f"{IDENTITY}/auth/tokens", headers={"X-Subject-Token": self.token}
        )

    async def my_projects(self) -> list[dict[str, Any]]:
        """The projects this token's user may scope to."""
        projects: list[dict[str, Any]] = (await self.get(f"{IDENTITY}/auth/projects"))["projects"]
        return projects

    # Compute -------------------------------------------------------------------------

    async def servers(self, params: dict[str, str]) -> Page:
        """One page of ``GET /servers/detail`` with Nova's own query parameters."""
        body = await self.get(f"{COMPUTE}/servers/detail", params=params, headers=COMPUTE_VERSION)
        servers: list[dict[str, Any]] = body["servers"]
        has_next = any(link.get("rel") == "next" for link in body.get("servers_links", []))
        return Page(servers, servers[-1]["id"] if has_next and servers else None)

    async def server(self, server_id: str) -> dict[str, Any]:
        body = await self.get(f"{COMPUTE}/servers/{segment(server_id)}", headers=COMPUTE_VERSION)
        found: dict[str, Any] = body["server"]
        return found

    async def flavor_names(self, flavor_ids: set[str]) -> dict[str, str]:
        """Names of these flavors (one call each, together); an unreadable one keeps its id."""
        return await self._names(f"{COMPUTE}/flavors/", "flavor", flavor_ids)

    async def image_names(self, image_ids: set[str]) -> dict[str, str]:
        """Names of these images (one call each, together); a deleted one keeps its id."""
        return await self._names(f"{IMAGE}/images/", None, image_ids)

    async def _names(self, prefix: str, key: str | None, ids: set[str]) -> dict[str, str]:
        async def name(item_id: str) -> tuple[str, str]:
            try:
                body = await self.get(prefix + segment(item_id))
            except ApiError:
                return item_id, item_id
            found = body[key] if key else body
            return item_id, str(found.get("name") or item_id)

        return dict(await asyncio.gather(*(name(i) for i in sorted(ids))))

    async def server_names(self, server_ids: set[str]) -> dict[str, str]:
        """Names of these servers (one call each, together); an unreadable one keeps its id."""
        return await self._names(f"{COMPUTE}/servers/", "server", server_ids)

"""The caller: X-Auth-Token validated into a policy context."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, Request

from kumo.api.compute.project_urls import URL_PROJECT_ID
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, NotFound, Unauthorized
from kumo.core.identity.auth import ValidatedToken, validate
from kumo.core.policy import Context


@dataclass(frozen=True)
class Caller:
    token: ValidatedToken
    request_id: str | None = None  # kumo.api.request_id's, carried into the context

    @property
    def ctx(self) -> Context:
        return self.token.context(self.request_id)


def caller(request: Request, state: AppState = Depends(app_state)) -> Caller:
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise Unauthorized("The request you have made requires authentication.")
    try:
        with state.db.session() as session:
            validated = validate(session, state.codec, token, state.token_cache)
    except NotFound as exc:
        raise Unauthorized("The request you have made requires authentication.") from exc
    found = Caller(validated, getattr(request.state, "request_id", None))
    # Compute URLs may name a project (kumo.api.compute.project_urls): it must be the
    # token's, for admins too, as in Nova.
    url_project = request.scope.get(URL_PROJECT_ID)
    if url_project is not None and url_project != found.ctx.project_id:
        raise BadRequest(
            f"Malformed request URL: URL's project_id '{url_project}' doesn't match "
            f"Context's project_id '{found.ctx.project_id}'"
        )
    return found

"""/compute/v2.1/os-keypairs (per user; admins may name another user from 2.10)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_member, int_param
from kumo.api.compute.microversion import api_version
from kumo.api.identity.views import timestamp
from kumo.api.state import AppState, app_state
from kumo.core.compute import keypairs
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.core.policy import enforce
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


def _owner(who: Caller, requested: str | None, version: APIVersion) -> str:
    """Whose key pairs: the caller's, or (admin, 2.10+) the user named in the request."""
    ctx = who.ctx
    if requested and requested != ctx.user_id:
        if not version.at_least("2.10"):
            raise BadRequest("user_id is accepted from microversion 2.10 on.")
        enforce(ctx, "compute:keypairs_of_others")
        return requested
    return ctx.user_id


def _view(p: m.KeyPair, version: APIVersion, full: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": p.name,
        "public_key": p.public_key,
        "fingerprint": p.fingerprint,
    }
    if version.at_least("2.2"):
        body["type"] = p.type
    if full:
        body.update(
            {
                "user_id": p.user_id,
                "id": p.id,
                "created_at": timestamp(p.created_at),
                "deleted": False,
                "deleted_at": None,
                "updated_at": None,
            }
        )
    return body


@router.get("/os-keypairs")
def list_keypairs(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    q = request.query_params
    owner = _owner(who, q.get("user_id"), version)
    limit = int_param(q, "limit") if version.at_least("2.35") else None
    with state.db.session() as session:
        rows = keypairs.list_for_user(
            session, owner, limit, q.get("marker") if version.at_least("2.35") else None
        )
    return {"keypairs": [{"keypair": _view(p, version)} for p in rows]}


def parse_create(data: dict[str, Any], version: APIVersion) -> keypairs.KeyPairRequest:
    """The ``keypair`` member as Nova's schema for ``version`` takes it: ``type`` from 2.2
    on (ssh before it, whatever was sent)."""
    name = keypairs.check_name(data.get("name"))
    key_type = data.get("type", "ssh") if version.at_least("2.2") else "ssh"
    if key_type not in ("ssh", "x509"):
        raise BadRequest(f"Invalid input for field/attribute type. Value: {key_type}.")
    public = data.get("public_key")
    if public is not None and (not isinstance(public, str) or not public.strip()):
        raise BadRequest("Keypair data is invalid: public_key must be a non-empty string.")
    return keypairs.KeyPairRequest(name=name, type=key_type, public_key=public)


@router.post("/os-keypairs")
def create_keypair(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> JSONResponse:
    data = body_member(body, "keypair")
    owner = _owner(who, data.get("user_id"), version)
    request = parse_create(data, version)
    with state.db.session() as session:
        pair, private = keypairs.create(session, owner, who.ctx.project_id or "", request)
    view = _view(pair, version)
    view["user_id"] = pair.user_id
    if private is not None:
        view["private_key"] = private
    return JSONResponse({"keypair": view}, status_code=201 if version.at_least("2.2") else 200)


@router.get("/os-keypairs/{name}")
def get_keypair(
    name: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    owner = _owner(who, request.query_params.get("user_id"), version)
    with state.db.session() as session:
        pair = keypairs.get(session, owner, name)
    return {"keypair": _view(pair, version, full=True)}


@router.delete("/os-keypairs/{name}")
def delete_keypair(
    name: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    owner = _owner(who, request.query_params.get("user_id"), version)
    with state.db.session() as session:
        keypairs.delete(session, owner, name)
    return Response(status_code=204 if version.at_least("2.2") else 202)

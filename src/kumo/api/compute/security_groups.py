"""/compute/v2.1/os-security-groups: Nova's proxy to Neutron's security groups (removed by
Nova at 2.36): list (sorted by project and name; ``all_tenants`` for admins; ``limit`` and
``offset``), show, create, update, delete, each group with its ingress rules in Nova's
shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import int_param
from kumo.api.compute.microversion import api_version
from kumo.api.compute.security_group_rules import check_version, nova_rule, remote_groups
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.network import security_group_rules as rules
from kumo.core.network import security_groups as groups
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1/os-security-groups")


def nova_groups(session: Session, found: list[m.SecurityGroup]) -> list[dict[str, Any]]:
    by_group = rules.rules_of(session, [g.id for g in found])
    ingress = {gid: [r for r in rs if r.direction == "ingress"] for gid, rs in by_group.items()}
    remotes = remote_groups(session, [r for rs in ingress.values() for r in rs])
    return [
        {
            "id": g.id,
            "name": g.name,
            "description": g.description,
            "tenant_id": g.project_id,
            "rules": [nova_rule(r, remotes) for r in ingress[g.id]],
        }
        for g in found
    ]


def _get(session: Session, who: Caller, group_id: str) -> m.SecurityGroup:
    try:
        return groups.get_group(session, who.ctx, group_id)
    except NotFound:
        raise NotFound(f"Security group {group_id} not found.") from None


def _property(data: dict[str, Any], key: str) -> str:
    """Nova's validate_property: a string of 1-255 characters once stripped."""
    value = data.get(key)
    if not isinstance(value, str):
        raise BadRequest(f"Security group {key} is not a string or unicode")
    stripped = value.strip()
    if not stripped:
        raise BadRequest(f"Invalid input received: {key} has a minimum character requirement of 1.")
    if len(stripped) > 255:
        raise BadRequest(f"Invalid input received: {key} has more than 255 characters.")
    # Checked stripped, stored as given (Nova keeps leading and trailing spaces).
    return value


def _member(body: Any) -> dict[str, Any]:
    if not body:
        raise BadRequest("The request body can't be empty")
    data = body.get("security_group") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise BadRequest("Missing parameter security_group")
    return data


@router.get("")
def list_groups(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    check_version(version)
    q = request.query_params
    every = who.ctx.is_admin and q.get("all_tenants", "0").lower() not in ("0", "false", "")
    limit = int_param(q, "limit")
    offset = int_param(q, "offset") or 0
    with state.db.session() as session:
        own = [] if every else [who.ctx.project_id or ""]
        found = groups.list_groups(session, who.ctx, own)
        views = nova_groups(session, found)
    views.sort(key=lambda v: (v["tenant_id"], v["name"]))
    views = views[offset:]
    if limit is not None:
        views = views[:limit]
    return {"security_groups": views}


@router.put("/", include_in_schema=False)
@router.delete("/", include_in_schema=False)
def empty_group_id(
    who: Caller = Depends(caller), version: APIVersion = Depends(api_version)
) -> None:
    # An empty id names no group (Nova: 404), not the collection behind a redirect.
    check_version(version)
    raise NotFound("Security group  not found.")


@router.get("/{group_id}")
def show_group(
    group_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    check_version(version)
    with state.db.session() as session:
        view = nova_groups(session, [_get(session, who, group_id)])[0]
    return {"security_group": view}


@router.post("")
def create_group(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    check_version(version)
    data = _member(body)
    attrs = {"name": _property(data, "name"), "description": _property(data, "description")}
    with state.db.session() as session:
        try:
            group = groups.create_group(session, who.ctx, attrs)
        except Conflict as exc:
            # Nova answers Neutron's conflicts (quota, the name 'default') as over quota.
            raise Forbidden(exc.message) from None
        view = nova_groups(session, [group])[0]
    return {"security_group": view}


@router.put("/{group_id}")
def update_group(
    group_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    check_version(version)
    with state.db.session() as session:
        group = _get(session, who, group_id)
        data = _member(body)
        attrs = {"name": _property(data, "name"), "description": _property(data, "description")}
        if attrs["name"] == group.name:
            # The default group keeps its name: only a change of it is refused.
            del attrs["name"]
        try:
            groups.update_group(session, who.ctx, group.id, attrs)
        except Conflict as exc:
            raise BadRequest(exc.message) from None
        view = nova_groups(session, [group])[0]
    return {"security_group": view}


@router.delete("/{group_id}")
def delete_group(
    group_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    check_version(version)
    with state.db.session() as session:
        group = _get(session, who, group_id)
        try:
            groups.delete_group(session, who.ctx, group.id)
        except Conflict as exc:
            raise BadRequest(exc.message) from None
    return Response(status_code=202)

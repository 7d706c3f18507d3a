"""/compute/v2.1/os-server-groups: placement policies for sets of servers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_member, bool_param, int_param
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.compute import server_groups
from kumo.core.microversion import APIVersion
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


def view(g: m.ServerGroup, members: list[str], version: APIVersion) -> dict[str, Any]:
    """Before 2.64 the policy is a one-item ``policies`` list; 2.13 adds the owners."""
    body: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "policies": [g.policy],
        "members": members,
        "metadata": {},
    }
    if version.at_least("2.13"):
        body["project_id"] = g.project_id
        body["user_id"] = g.user_id
    return body


@router.get("/os-server-groups")
def list_groups(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    q = request.query_params
    all_projects = bool(bool_param(q, "all_projects"))
    limit, offset = int_param(q, "limit"), int_param(q, "offset")
    with state.db.session() as session:
        rows = server_groups.list_groups(session, who.ctx, all_projects, limit, offset)
        found = server_groups.members(session, [g.id for g in rows])
        return {"server_groups": [view(g, found[g.id], version) for g in rows]}


@router.post("/os-server-groups")
def create_group(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    data = body_member(body, "server_group")
    with state.db.session() as session:
        group = server_groups.create(session, who.ctx, data, version)
        return {"server_group": view(group, [], version)}


@router.get("/os-server-groups/{group_id}")
def show_group(
    group_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    with state.db.session() as session:
        group = server_groups.get(session, who.ctx, group_id)
        found = server_groups.members(session, [group.id])
        return {"server_group": view(group, found[group.id], version)}


@router.delete("/os-server-groups/{group_id}", status_code=204)
def delete_group(
    group_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    with state.db.session() as session:
        server_groups.delete(session, who.ctx, group_id)
    return Response(status_code=204)

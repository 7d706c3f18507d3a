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
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1")


# The body of a create in each microversion, as Nova's schema checks it: the API's part.


def policies_for(version: APIVersion) -> tuple[str, ...]:
    """The soft policies arrived with microversion 2.15."""
    return (
        server_groups.HARD + server_groups.SOFT if version.at_least("2.15") else server_groups.HARD
    )


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise BadRequest(
            "Invalid input for field/attribute name. Value: "
            f"{value}. A name of 1 to 255 characters is required."
        )
    if value != value.strip():
        raise BadRequest(
            f"Invalid input for field/attribute name. Value: {value}. "
            "Leading or trailing whitespace is not allowed."
        )
    return value


def _policy(body: dict[str, Any], version: APIVersion) -> str:
    """Before 2.64 the body carries ``policies``: a list of exactly one known policy."""
    policies = body.get("policies")
    allowed = policies_for(version)
    if not isinstance(policies, list) or len(policies) != 1:
        raise BadRequest(
            f"Invalid input for field/attribute policies. Value: {policies}. "
            "A list with exactly one policy is required."
        )
    policy = policies[0]
    if policy not in allowed:
        raise BadRequest(
            f"Invalid input for field/attribute policies. Value: {policies}. "
            f"'{policy}' is not one of {list(allowed)}"
        )
    return str(policy)


def _create_args(body: dict[str, Any], version: APIVersion) -> tuple[str, str]:
    """The name and the policy a create asks for."""
    unknown = set(body) - {"name", "policies"}
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute server_group. Additional properties are not "
            f"allowed ({', '.join(sorted(unknown))} unexpected)"
        )
    return _name(body.get("name")), _policy(body, version)


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
        group = server_groups.create(session, who.ctx, *_create_args(data, version))
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

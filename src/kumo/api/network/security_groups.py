"""/network/v2.0/security-groups: Neutron's security groups, each shown with its rules."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network.common import (
    V2,
    check_attributes,
    check_revision,
    check_update_attributes,
    list_response,
    resource_body,
    resource_items,
    show_fields,
    standard_attrs,
)
from kumo.api.network.security_group_rules import rule_view
from kumo.api.state import AppState, app_state
from kumo.core.network import security_group_rules as rules
from kumo.core.network import security_groups as groups
from kumo.core.network.tags import tags_of
from kumo.db import models as m

router = APIRouter(prefix=V2 + "/security-groups")

COLLECTION = "security_groups"


def group_views(session: Session, found: list[m.SecurityGroup]) -> list[dict[str, Any]]:
    """Groups as Neutron shows them: standard attributes, ``stateful``, ``shared`` and the
    group's rules (three queries whatever the number of groups)."""
    ids = [g.id for g in found]
    by_group = rules.rules_of(session, ids)
    tags = tags_of(session, groups.TAG_TYPE, ids)
    defaults = groups.default_ids(session, ids)
    views = []
    for group in found:
        view: dict[str, Any] = {
            "id": group.id,
            "name": group.name,
            "stateful": group.stateful,
            "shared": False,
            "security_group_rules": [rule_view(r, defaults) for r in by_group[group.id]],
        }
        view.update(standard_attrs(group, tags[group.id]))
        views.append(view)
    return views


@router.get("")
def list_groups(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    q = request.query_params
    with state.db.session() as session:
        found = groups.list_groups(
            session, who.ctx, q.getlist("project_id") + q.getlist("tenant_id")
        )
        views = group_views(session, found)
    return list_response(q, COLLECTION, views, state.config.public_url + router.prefix)


@router.post("")
def create_groups(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "security_group", COLLECTION)
    for item in items:
        check_attributes(item, groups.CREATE_ATTRS)
    with state.db.session() as session:
        created = [groups.create_group(session, who.ctx, item) for item in items]
        views = group_views(session, created)
    if bulk:
        return JSONResponse({COLLECTION: views}, status_code=201)
    return JSONResponse({"security_group": views[0]}, status_code=201)


@router.get("/{group_id}")
def show_group(
    group_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        groups.ensure_default(session, who.ctx)
        view = group_views(session, [groups.get_group(session, who.ctx, group_id)])[0]
    return {"security_group": show_fields(request.query_params, view)}


@router.put("/{group_id}")
def update_group(
    group_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, "security_group")
    check_update_attributes(
        data, groups.UPDATE_ATTRS, groups.CREATE_ATTRS | {"id", "security_group_rules"}
    )
    with state.db.session() as session:
        check_revision(request.headers, groups.get_group(session, who.ctx, group_id))
        group = groups.update_group(session, who.ctx, group_id, data)
        view = group_views(session, [group])[0]
    return {"security_group": view}


@router.delete("/{group_id}")
def delete_group(
    group_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, groups.get_group(session, who.ctx, group_id))
        groups.delete_group(session, who.ctx, group_id)
    return Response(status_code=204)

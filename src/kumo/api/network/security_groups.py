"""/network/v2.0/security-groups: Neutron's security groups, each shown with its rules."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.common import V2, check_update_attributes, resource_body, standard_attrs
from kumo.api.network.security_group_rules import rule_view
from kumo.api.state import AppState, app_state
from kumo.core.network import security_group_rules as rules
from kumo.core.network import security_groups as groups
from kumo.core.network.tags import tags_of
from kumo.core.policy import Context
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


SECURITY_GROUP = handlers.Resource(
    singular="security_group",
    collection=COLLECTION,
    path="/security-groups",
    get=groups.get_group,
    render=handlers.for_any_caller(group_views),
)


def _find_groups(session: Session, ctx: Context, q: QueryParams) -> list[m.SecurityGroup]:
    """The groups the caller may see, of the projects the query names (if it names any)."""
    return groups.list_groups(session, ctx, q.getlist("project_id") + q.getlist("tenant_id"))


def _get_group_after_default(session: Session, ctx: Context, group_id: str) -> m.SecurityGroup:
    """Neutron makes a project's default group on first use, showing a group included; in
    the show's transaction, so a group not found leaves no default group behind."""
    groups.ensure_default(session, ctx)
    return groups.get_group(session, ctx, group_id)


@router.get("")
def list_groups(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    find = partial(_find_groups, q=request.query_params)
    return handlers.listing(request, state, who.ctx, SECURITY_GROUP, find)


@router.post("")
def create_groups(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    create = handlers.one_by_one(groups.create_group)
    return handlers.create(state, who.ctx, body, SECURITY_GROUP, groups.CREATE_ATTRS, create)


@router.get("/{group_id}")
def show_group(
    group_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(
        request, state, who.ctx, SECURITY_GROUP, group_id, get=_get_group_after_default
    )


@router.put("/{group_id}")
def update_group(
    group_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, SECURITY_GROUP.singular)
    check_update_attributes(
        data, groups.UPDATE_ATTRS, groups.CREATE_ATTRS | {"id", "security_group_rules"}
    )
    return handlers.update(
        request, state, who.ctx, SECURITY_GROUP, group_id, data, groups.update_group
    )


@router.delete("/{group_id}")
def delete_group(
    group_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(request, state, who.ctx, SECURITY_GROUP, group_id, groups.delete_group)

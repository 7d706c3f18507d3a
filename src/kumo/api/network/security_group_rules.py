"""/network/v2.0/security-group-rules: Neutron's security group rules (create, list, show,
description update, delete)."""

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
from kumo.api.state import AppState, app_state
from kumo.core.network import security_group_rules as rules
from kumo.core.network import security_groups as groups
from kumo.core.policy import Context
from kumo.db import models as m

router = APIRouter(prefix=V2 + "/security-group-rules")

COLLECTION = "security_group_rules"


def rule_view(rule: m.SecurityGroupRule, default_groups: set[str]) -> dict[str, Any]:
    """A rule as Neutron shows it (security-group, standard attributes, normalized CIDR,
    belongs_to_default_sg)."""
    view = {
        "id": rule.id,
        "security_group_id": rule.security_group_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "normalized_cidr": rules.normalized_cidr(rule.remote_ip_prefix),
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": rule.remote_address_group_id,
        "belongs_to_default_sg": rule.security_group_id in default_groups,
    }
    view.update(standard_attrs(rule))
    # Rules carry no tags in Neutron.
    view.pop("tags")
    return view


def _views(session: Session, found: list[m.SecurityGroupRule]) -> list[dict[str, Any]]:
    """Rules as Neutron shows them, with their groups' default flag looked up once."""
    defaults = groups.default_ids(session, {r.security_group_id for r in found})
    return [rule_view(r, defaults) for r in found]


SECURITY_GROUP_RULE = handlers.Resource(
    singular="security_group_rule",
    collection=COLLECTION,
    path="/security-group-rules",
    get=rules.get_rule,
    render=handlers.for_any_caller(_views),
)


def _find_rules(session: Session, ctx: Context, q: QueryParams) -> list[m.SecurityGroupRule]:
    """The rules the caller may see, of the projects the query names (if it names any)."""
    return rules.list_rules(session, ctx, q.getlist("project_id") + q.getlist("tenant_id"))


@router.get("")
def list_rules(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    find = partial(_find_rules, q=request.query_params)
    return handlers.listing(request, state, who.ctx, SECURITY_GROUP_RULE, find)


@router.post("")
def create_rules(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    # One call for all the items: a bulk request's rules are checked against each other.
    return handlers.create(
        state, who.ctx, body, SECURITY_GROUP_RULE, rules.CREATE_ATTRS, rules.create_rules
    )


@router.get("/{rule_id}")
def show_rule(
    rule_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, SECURITY_GROUP_RULE, rule_id)


@router.put("/{rule_id}")
def update_rule(
    rule_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, SECURITY_GROUP_RULE.singular)
    check_update_attributes(data, rules.UPDATE_ATTRS, rules.CREATE_ATTRS)
    return handlers.update(
        request, state, who.ctx, SECURITY_GROUP_RULE, rule_id, data, rules.update_rule
    )


@router.delete("/{rule_id}")
def delete_rule(
    rule_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(request, state, who.ctx, SECURITY_GROUP_RULE, rule_id, rules.delete_rule)

"""/network/v2.0/security-group-rules: Neutron's security group rules (create, list, show,
description update, delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

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
from kumo.api.state import AppState, app_state
from kumo.core.network import security_group_rules as rules
from kumo.core.network import security_groups as groups
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


def _views(session: Any, found: list[m.SecurityGroupRule]) -> list[dict[str, Any]]:
    defaults = groups.default_ids(session, {r.security_group_id for r in found})
    return [rule_view(r, defaults) for r in found]


def _projects(request: Request) -> list[str]:
    q = request.query_params
    return q.getlist("project_id") + q.getlist("tenant_id")


@router.get("")
def list_rules(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        found = rules.list_rules(session, who.ctx, _projects(request))
        views = _views(session, found)
    return list_response(
        request.query_params, COLLECTION, views, state.config.public_url + router.prefix
    )


@router.post("")
def create_rules(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "security_group_rule", COLLECTION)
    for item in items:
        check_attributes(item, rules.CREATE_ATTRS)
    with state.db.session() as session:
        created = rules.create_rules(session, who.ctx, items)
        views = _views(session, created)
    if bulk:
        return JSONResponse({COLLECTION: views}, status_code=201)
    return JSONResponse({"security_group_rule": views[0]}, status_code=201)


@router.get("/{rule_id}")
def show_rule(
    rule_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        view = _views(session, [rules.get_rule(session, who.ctx, rule_id)])[0]
    return {"security_group_rule": show_fields(request.query_params, view)}


@router.put("/{rule_id}")
def update_rule(
    rule_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, "security_group_rule")
    check_update_attributes(data, rules.UPDATE_ATTRS, rules.CREATE_ATTRS)
    with state.db.session() as session:
        check_revision(request.headers, rules.get_rule(session, who.ctx, rule_id))
        rule = rules.update_rule(session, who.ctx, rule_id, data)
        view = _views(session, [rule])[0]
    return {"security_group_rule": view}


@router.delete("/{rule_id}")
def delete_rule(
    rule_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, rules.get_rule(session, who.ctx, rule_id))
        rules.delete_rule(session, who.ctx, rule_id)
    return Response(status_code=204)

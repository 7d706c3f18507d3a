"""/compute/v2.1/os-aggregates: host aggregates and their availability zones (admin only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.common import body_member, nova_time, unknown_keys
from kumo.api.state import AppState, app_state
from kumo.core.compute import aggregates
from kumo.core.errors import BadRequest
from kumo.core.policy import enforce

router = APIRouter(prefix="/compute/v2.1/os-aggregates")


def view(a: aggregates.AggregateView, full: bool = True) -> dict[str, Any]:
    """Nova's aggregate: create answers without ``hosts`` and ``metadata`` (``full=False``);
    ``uuid`` only from 2.41, beyond the microversions kumo serves."""
    row = a.row
    body: dict[str, Any] = {
        "id": row.id,
        "name": row.name,
        "availability_zone": row.availability_zone,
        "created_at": nova_time(row.created_at),
        "updated_at": nova_time(row.updated_at),
        "deleted_at": nova_time(row.deleted_at),
        "deleted": bool(row.deleted),
    }
    if full:
        body["hosts"] = a.hosts
        body["metadata"] = a.metadata
    return body


def _only(body: Any, key: str) -> dict[str, Any]:
    """``body[key]`` as an object, and nothing beside it (Nova's additionalProperties)."""
    data = body_member(body, key)
    unknown_keys(body, {key})
    return data


@router.get("")
def list_aggregates(
    who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "compute:aggregates:index")
    with state.db.session() as session:
        found = aggregates.views(session, aggregates.list_aggregates(session))
        return {"aggregates": [view(a) for a in found]}


@router.post("")
def create_aggregate(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:aggregates:create")
    data = _only(body, "aggregate")
    unknown_keys(data, {"name", aggregates.AZ_KEY})
    if "name" not in data:
        raise BadRequest(
            "Invalid input for field/attribute aggregate. 'name' is a required property"
        )
    name = aggregates.check_name(data["name"])
    zone = aggregates.check_create_zone(data.get(aggregates.AZ_KEY))
    with state.db.session() as session:
        return {"aggregate": view(aggregates.create(session, name, zone), full=False)}


@router.get("/{aggregate_id}")
def show_aggregate(
    aggregate_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    enforce(who.ctx, "compute:aggregates:show")
    with state.db.session() as session:
        row = aggregates.get(session, aggregate_id)
        return {"aggregate": view(aggregates.views(session, [row])[0])}


@router.put("/{aggregate_id}")
def update_aggregate(
    aggregate_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    enforce(who.ctx, "compute:aggregates:update")
    change = _parse_update(_only(body, "aggregate"))
    with state.db.session() as session:
        return {"aggregate": view(aggregates.update(session, aggregate_id, change))}


def _parse_update(data: dict[str, Any]) -> aggregates.AggregateUpdate:
    """Nova's update schema: at least one of name and availability_zone, nothing else."""
    unknown_keys(data, {"name", aggregates.AZ_KEY})
    if not data:
        raise BadRequest(
            "Invalid input for field/attribute aggregate. {} does not have enough properties"
        )
    name = aggregates.check_name(data["name"]) if "name" in data else None
    zone = data.get(aggregates.AZ_KEY)
    return aggregates.AggregateUpdate(
        name=name,
        set_zone=aggregates.AZ_KEY in data,
        zone=aggregates.zone_name(zone) if zone is not None else None,
    )


@router.delete("/{aggregate_id}")
def delete_aggregate(
    aggregate_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    """Nova answers 200 with an empty body."""
    enforce(who.ctx, "compute:aggregates:delete")
    with state.db.session() as session:
        aggregates.delete_aggregate(session, aggregate_id)
    return Response(status_code=200)


_ACTIONS = {
    "add_host": ("compute:aggregates:add_host", "host"),
    "remove_host": ("compute:aggregates:remove_host", "host"),
    "set_metadata": ("compute:aggregates:set_metadata", "metadata"),
}


@router.post("/{aggregate_id}/action")
def aggregate_action(
    aggregate_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    """One of add_host, remove_host, set_metadata; each answers the whole aggregate."""
    action = next((k for k in _ACTIONS if isinstance(body, dict) and k in body), None)
    if action is None:
        name = next(iter(body), "") if isinstance(body, dict) and body else ""
        raise BadRequest(f"There is no such action: {name}")
    rule, field = _ACTIONS[action]
    enforce(who.ctx, rule)
    data = _only(body, action)
    if field not in data:
        raise BadRequest(
            f"Invalid input for field/attribute {action}. Value: {data}. "
            f"'{field}' is a required property"
        )
    unknown_keys(data, {field})
    with state.db.session() as session:
        if action == "add_host":
            found = aggregates.add_host(session, aggregate_id, data[field])
        elif action == "remove_host":
            found = aggregates.remove_host(session, aggregate_id, data[field])
        else:
            found = aggregates.set_metadata(session, aggregate_id, data[field])
        return {"aggregate": view(found)}

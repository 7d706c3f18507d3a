"""/network/v2.0/subnetpools: prefixes subnets are carved from (subnet_allocation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.common import V2, check_attributes, resource_body, standard_attrs
from kumo.api.state import AppState, app_state
from kumo.core.network import subnetpools, tags
from kumo.db import models as m

router = APIRouter(prefix=V2)

UPDATE = {
    "name",
    "description",
    "prefixes",
    "default_prefixlen",
    "min_prefixlen",
    "max_prefixlen",
    "default_quota",
    "shared",
    "is_default",
    "address_scope_id",
}
CREATE = UPDATE | {"project_id", "tenant_id", "tags"}


def views(session: Session, rows: list[m.SubnetPool]) -> list[dict[str, Any]]:
    tagged = tags.tags_of(session, subnetpools.RESOURCE, [p.id for p in rows])
    return [view(p, tagged[p.id]) for p in rows]


def view(p: m.SubnetPool, tag_list: list[str]) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "ip_version": p.ip_version,
        "prefixes": list(p.prefixes or []),
        "default_prefixlen": p.default_prefixlen,
        "min_prefixlen": p.min_prefixlen,
        "max_prefixlen": p.max_prefixlen,
        "default_quota": p.default_quota,
        "shared": p.shared,
        "is_default": p.is_default,
        "address_scope_id": p.address_scope_id,
        **standard_attrs(p, tag_list),
    }


SUBNETPOOL = handlers.Resource(
    singular="subnetpool",
    collection="subnetpools",
    path="/subnetpools",
    get=subnetpools.get_subnetpool,
    render=handlers.for_any_caller(views),
)


@router.post("/subnetpools")
def create_subnetpools(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    create = handlers.one_by_one(
        handlers.tagged(subnetpools.RESOURCE, subnetpools.create_subnetpool)
    )
    return handlers.create(state, who.ctx, body, SUBNETPOOL, CREATE, create)


@router.get("/subnetpools")
def list_subnetpools(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return handlers.listing(request, state, who.ctx, SUBNETPOOL, subnetpools.list_subnetpools)


@router.get("/subnetpools/{pool_id}")
def show_subnetpool(
    pool_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, SUBNETPOOL, pool_id)


@router.put("/subnetpools/{pool_id}")
def update_subnetpool(
    pool_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, SUBNETPOOL.singular)
    check_attributes(data, UPDATE)
    return handlers.update(
        request, state, who.ctx, SUBNETPOOL, pool_id, data, subnetpools.update_subnetpool
    )


@router.delete("/subnetpools/{pool_id}")
def delete_subnetpool(
    pool_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(
        request, state, who.ctx, SUBNETPOOL, pool_id, subnetpools.delete_subnetpool
    )

"""/network/v2.0/subnetpools: prefixes subnets are carved from (subnet_allocation)."""

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
    create_tags,
    list_response,
    resource_body,
    resource_items,
    show_fields,
    standard_attrs,
)
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


@router.post("/subnetpools")
def create_subnetpools(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    items, bulk = resource_items(body, "subnetpool", "subnetpools")
    with state.db.session() as session:
        rows = []
        for data in items:
            check_attributes(data, CREATE)
            data = dict(data)
            wanted_tags = create_tags(data)
            pool = subnetpools.create_subnetpool(session, who.ctx, data)
            if wanted_tags:
                tags.replace_tags(session, subnetpools.RESOURCE, pool.id, wanted_tags)
            rows.append(pool)
        session.flush()
        rendered = views(session, rows)
    if bulk:
        return JSONResponse({"subnetpools": rendered}, status_code=201)
    return JSONResponse({"subnetpool": rendered[0]}, status_code=201)


@router.get("/subnetpools")
def list_subnetpools(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    with state.db.session() as session:
        rendered = views(session, subnetpools.list_subnetpools(session, who.ctx))
    return list_response(
        request.query_params,
        "subnetpools",
        rendered,
        state.config.public_url + V2 + "/subnetpools",
    )


@router.get("/subnetpools/{pool_id}")
def show_subnetpool(
    pool_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        rendered = views(session, [subnetpools.get_subnetpool(session, who.ctx, pool_id)])[0]
    return {"subnetpool": show_fields(request.query_params, rendered)}


@router.put("/subnetpools/{pool_id}")
def update_subnetpool(
    pool_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = resource_body(body, "subnetpool")
    check_attributes(data, UPDATE)
    with state.db.session() as session:
        check_revision(request.headers, subnetpools.get_subnetpool(session, who.ctx, pool_id))
        pool = subnetpools.update_subnetpool(session, who.ctx, pool_id, data)
        rendered = views(session, [pool])[0]
    return {"subnetpool": rendered}


@router.delete("/subnetpools/{pool_id}")
def delete_subnetpool(
    pool_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        check_revision(request.headers, subnetpools.get_subnetpool(session, who.ctx, pool_id))
        subnetpools.delete_subnetpool(session, who.ctx, pool_id)
    return Response(status_code=204)

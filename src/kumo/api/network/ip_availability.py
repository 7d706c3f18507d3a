"""/network/v2.0/network-ip-availabilities: how many addresses each network's subnets have
and how many are taken (Neutron's network-ip-availability; admins only, as its policy)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.network.common import V2, list_response, show_fields
from kumo.api.state import AppState, app_state
from kumo.core.errors import Forbidden
from kumo.core.network import ipam, networks
from kumo.core.policy import Context
from kumo.db import models as m

router = APIRouter(prefix=V2)


def _admin(ctx: Context) -> None:
    if not ctx.is_admin:
        raise Forbidden("(rule:get_network_ip_availability) is disallowed by policy")


def _views(session: Session, rows: list[m.Network]) -> list[dict[str, Any]]:
    ids = [n.id for n in rows]
    subnets: dict[str, list[m.Subnet]] = {i: [] for i in ids}
    for subnet in session.scalars(
        select(m.Subnet).where(m.Subnet.network_id.in_(ids)).order_by(m.Subnet.created_at)
    ):
        subnets[subnet.network_id].append(subnet)
    used = dict(
        session.execute(
            select(m.IPAllocation.subnet_id, func.count())
            .where(m.IPAllocation.network_id.in_(ids))
            .group_by(m.IPAllocation.subnet_id)
        ).all()
    )
    views = []
    for network in rows:
        per_subnet: list[dict[str, Any]] = [
            {
                "subnet_id": s.id,
                "subnet_name": s.name,
                "cidr": s.cidr,
                "ip_version": s.ip_version,
                "total_ips": sum(last - first + 1 for first, last in ipam.pool_ranges(s)),
                "used_ips": int(used.get(s.id, 0)),
            }
            for s in subnets[network.id]
        ]
        views.append(
            {
                "network_id": network.id,
                "network_name": network.name,
                "project_id": network.project_id,
                "tenant_id": network.project_id,
                "total_ips": sum(s["total_ips"] for s in per_subnet),
                "used_ips": sum(s["used_ips"] for s in per_subnet),
                "subnet_ip_availability": per_subnet,
            }
        )
    return views


def _ip_version(view: dict[str, Any], wanted: list[str]) -> bool:
    return any(str(s["ip_version"]) in wanted for s in view["subnet_ip_availability"])


@router.get("/network-ip-availabilities")
def list_availabilities(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    _admin(who.ctx)
    with state.db.session() as session:
        views = _views(session, networks.list_networks(session, who.ctx))
    return list_response(
        request.query_params,
        "network_ip_availabilities",
        views,
        state.config.public_url + V2 + "/network-ip-availabilities",
        special={"ip_version": _ip_version},
    )


@router.get("/network-ip-availabilities/{network_id}")
def show_availability(
    network_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    _admin(who.ctx)
    with state.db.session() as session:
        view = _views(session, [networks.get_network(session, who.ctx, network_id)])[0]
    return {"network_ip_availability": show_fields(request.query_params, view)}

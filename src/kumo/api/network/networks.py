"""/network/v2.0/networks: Neutron networks with the provider, external-net, net-mtu,
port-security, availability zone and standard attributes."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network import handlers
from kumo.api.network.common import V2, check_attributes, resource_body, standard_attrs
from kumo.api.state import AppState, app_state
from kumo.config import NetworkConfig
from kumo.core.errors import BadRequest
from kumo.core.network import networks, tags
from kumo.core.policy import Context
from kumo.db import models as m

router = APIRouter(prefix=V2)

COMMON = {
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "port_security_enabled",
    "mtu",
    "is_default",
    "dns_domain",
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "qos_policy_id",
}
CREATE = COMMON | {"project_id", "tenant_id", "availability_zone_hints", "tags"}
UPDATE = COMMON | {"availability_zone_hints"}


def views(session: Session, ctx: Context, rows: list[m.Network]) -> list[dict[str, Any]]:
    """Neutron's network views, with the lookups done once for all rows."""
    ids = [n.id for n in rows]
    subnets = networks.subnet_ids_of(session, ids)
    tagged = tags.tags_of(session, networks.RESOURCE, ids)
    return [_view(ctx, n, subnets[n.id], tagged[n.id]) for n in rows]


def _view(ctx: Context, n: m.Network, subnets: list[str], tag_list: list[str]) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": n.id,
        "name": n.name,
        "admin_state_up": n.admin_state_up,
        "status": n.status,
        "subnets": subnets,
        "shared": n.shared,
        "router:external": n.external,
        "is_default": n.is_default,
        "mtu": n.mtu,
        "port_security_enabled": n.port_security_enabled,
        "availability_zone_hints": list(n.availability_zone_hints or []),
        "availability_zones": ["nova"],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "l2_adjacency": True,
        "dns_domain": n.dns_domain,
        "qos_policy_id": None,
        **standard_attrs(n, tag_list),
    }
    if ctx.is_admin:
        # Neutron's policy shows the provider segment to admins only.
        view["provider:network_type"] = n.network_type
        view["provider:physical_network"] = n.physical_network
        view["provider:segmentation_id"] = n.segmentation_id
    return view


NETWORK = handlers.Resource(
    singular="network",
    collection="networks",
    path="/networks",
    get=networks.get_network,
    render=views,
)


def _qos(data: dict[str, Any]) -> None:
    """kumo has no QoS policies: refuse one rather than ignore it."""
    if data.pop("qos_policy_id", None) is not None:
        raise BadRequest("QoS policies are not supported by kumo: leave qos_policy_id null.")


def _create_network(
    session: Session, ctx: Context, data: dict[str, Any], config: NetworkConfig
) -> m.Network:
    """One network of a create request (its tags are set by the shared flow)."""
    _qos(data)
    return networks.create_network(session, ctx, config, data)


@router.post("/networks")
def create_networks(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> JSONResponse:
    create = partial(_create_network, config=state.config.network)
    return handlers.create(
        state,
        who.ctx,
        body,
        NETWORK,
        CREATE,
        handlers.one_by_one(handlers.tagged(networks.RESOURCE, create)),
    )


@router.get("/networks")
def list_networks(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    return handlers.listing(request, state, who.ctx, NETWORK, networks.list_networks)


@router.get("/networks/{network_id}")
def show_network(
    network_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    return handlers.show(request, state, who.ctx, NETWORK, network_id)


@router.put("/networks/{network_id}")
def update_network(
    network_id: str,
    request: Request,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    data = dict(resource_body(body, NETWORK.singular))
    check_attributes(data, UPDATE)
    _qos(data)
    return handlers.update(
        request, state, who.ctx, NETWORK, network_id, data, networks.update_network
    )


@router.delete("/networks/{network_id}")
def delete_network(
    network_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    return handlers.delete(request, state, who.ctx, NETWORK, network_id, networks.delete_network)

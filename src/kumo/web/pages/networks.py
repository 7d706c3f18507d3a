"""Networks: the project's networks with their subnets, creating one (with an optional first
subnet), one network's subnets and ports, adding and deleting subnets, deleting a network.

The same calls as ``openstack network create`` then ``openstack subnet create``: the list is
``GET /networks`` (filtered by label with Neutron's ``tags``) and one ``GET /subnets`` for
every row's CIDRs; a network's page is its show call plus ``GET /subnets`` and ``GET /ports``
filtered by ``network_id``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import ApiClient, ApiError
from kumo.web.forms import read_form
from kumo.web.pages.neutron import (
    created,
    deleted,
    framed,
    item_path,
    listed,
    project_networks,
    shown,
    text,
    words,
)
from kumo.web.routing import DashboardRoute, call_then_redirect, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

LIST = "/project/networks"

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def subnet_attrs(network_id: str, form: dict[str, str]) -> dict[str, Any]:
    """The body of ``POST /subnets`` from the subnet fields of a form (the CLI's options:
    --subnet-range, --ip-version, --gateway, --dhcp/--no-dhcp, --dns-nameserver)."""
    attrs: dict[str, Any] = {
        "network_id": network_id,
        "cidr": text(form, "cidr"),
        "ip_version": int(form["ip_version"]) if form.get("ip_version") in ("4", "6") else 4,
        "enable_dhcp": form.get("enable_dhcp") == "on",
    }
    if text(form, "subnet_name"):
        attrs["name"] = text(form, "subnet_name")
    gateway = text(form, "gateway_ip")
    if gateway.lower() == "none":
        attrs["gateway_ip"] = None
    elif gateway:
        attrs["gateway_ip"] = gateway
    if words(text(form, "dns_nameservers")):
        attrs["dns_nameservers"] = words(text(form, "dns_nameservers"))
    return attrs


async def _list_page(
    request: Request,
    api: ApiClient,
    tag: str = "",
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    context = await framed(request, api, "Networks")
    try:
        networks, subnets = await asyncio.gather(
            project_networks(api, context["session"].project_id, **({"tags": tag} if tag else {})),
            listed(api, "subnets"),
        )
    except ApiError as exc:
        networks, subnets = [], []
        error, status = error or exc.message, status if error else exc.status
    by_network: dict[str, list[dict[str, Any]]] = {}
    for s in subnets:
        by_network.setdefault(str(s.get("network_id")), []).append(s)
    rows = [
        {**n, "subnet_rows": by_network.get(str(n["id"]), [])}
        for n in sorted(networks, key=lambda n: str(n.get("name") or n["id"]))
    ]
    context.update(
        rows=rows,
        tag=tag,
        error=error,
        form=form or {"enable_dhcp": "on", "ip_version": "4"},
        list_url=LIST,
    )
    return render(request, "networks/list.html", context, status)


@router.get(LIST)
async def networks(request: Request, tag: str = Query("", max_length=255)) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _list_page(request, api, tag.strip())


@router.post(LIST)
async def create_network(request: Request) -> Response:
    """Create a network, then its first subnet when a CIDR is given. A refused subnet is
    shown on the new network's page (the network exists, as with the CLI's two calls)."""
    form = await read_form(request)
    async with ApiClient(request, session_token(request)) as api:
        attrs: dict[str, Any] = {"admin_state_up": True}
        if text(form, "name"):
            attrs["name"] = text(form, "name")
        try:
            network = await created(api, "networks", attrs)
        except ApiError as exc:
            return await _list_page(request, api, error=exc.message, status=exc.status, form=form)
        if text(form, "cidr"):
            try:
                await created(api, "subnets", subnet_attrs(network["id"], form))
            except ApiError as exc:
                message = f"The network was created; its subnet was refused: {exc.message}"
                return await _detail_page(request, api, network["id"], message, exc.status, form)
    return redirect(request, f"{LIST}/{network['id']}")


async def _detail_page(
    request: Request,
    api: ApiClient,
    network_id: str,
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    context = await framed(request, api, "Network")
    try:
        network, subnets, ports = await asyncio.gather(
            shown(api, "networks", network_id),
            listed(api, "subnets", network_id=network_id),
            listed(api, "ports", network_id=network_id),
        )
    except ApiError as exc:  # another project's network is Neutron's 404, in its words
        context.update(status=exc.status, message=exc.message, title="Network not shown")
        return render(request, "error.html", context, exc.status)
    context.update(
        title=network.get("name") or network["id"],
        network=network,
        subnets=sorted(subnets, key=lambda s: str(s.get("cidr"))),
        subnet_names={str(s["id"]): s.get("name") or s.get("cidr") for s in subnets},
        ports=sorted(ports, key=lambda p: str(p.get("device_owner")) + str(p.get("name"))),
        error=error,
        form=form or {"enable_dhcp": "on", "ip_version": "4"},
        list_url=LIST,
    )
    return render(request, "networks/detail.html", context, status)


@router.get(LIST + "/{network_id}")
async def network(request: Request, network_id: str) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _detail_page(request, api, network_id)


@router.post(LIST + "/{network_id}/delete")
async def delete_network(request: Request, network_id: str) -> Response:
    # e.g. ports in use: shown on the network's page
    return await call_then_redirect(
        request,
        lambda api: deleted(api, "networks", network_id),
        LIST,
        lambda api, exc: _detail_page(request, api, network_id, exc.message, exc.status),
    )


@router.post(LIST + "/{network_id}/subnets")
async def add_subnet(request: Request, network_id: str) -> Response:
    form = await read_form(request)
    return await call_then_redirect(
        request,
        lambda api: created(api, "subnets", subnet_attrs(network_id, form)),
        f"{LIST}/{network_id}",
        lambda api, exc: _detail_page(request, api, network_id, exc.message, exc.status, form),
    )


@router.post(LIST + "/{network_id}/subnets/{subnet_id}/delete")
async def delete_subnet(request: Request, network_id: str, subnet_id: str) -> Response:
    return await call_then_redirect(
        request,
        lambda api: deleted(api, "subnets", subnet_id),
        f"{LIST}/{network_id}",
        lambda api, exc: _detail_page(request, api, network_id, exc.message, exc.status),
    )


@router.post(LIST + "/{network_id}/labels")
async def set_labels(request: Request, network_id: str) -> Response:
    """Replace the network's labels (Neutron's tags, as ``openstack network set --tag``
    after ``--no-tag``): one ``PUT /networks/{id}/tags`` with the whole list."""
    form = await read_form(request)
    body = {"tags": words(text(form, "labels"))}
    return await call_then_redirect(
        request,
        lambda api: api.call("PUT", item_path("networks", network_id, "tags"), json=body),
        f"{LIST}/{network_id}",
        lambda api, exc: _detail_page(request, api, network_id, exc.message, exc.status),
    )

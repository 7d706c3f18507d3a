"""Routers: the project's routers, creating one, its external gateway (set or clear), its
interfaces on subnets (add or remove), deleting it.

The calls of ``openstack router create/set --external-gateway/unset --external-gateway/add
subnet/remove subnet/delete``: the gateway is the router's ``external_gateway_info`` (an
empty one clears it), interfaces are ``add_router_interface`` and
``remove_router_interface`` and a router's interfaces are its ports (``device_id``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from kumo.web import labels
from kumo.web.apiclient import ApiClient, ApiError, segment
from kumo.web.forms import read_form
from kumo.web.pages.neutron import (
    created,
    deleted,
    external_networks,
    framed,
    item_path,
    listed,
    names_by_id,
    owned,
    shown,
    text,
    updated,
)
from kumo.web.routing import DashboardRoute, call_then_redirect, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

LIST = "/project/routers"
Call = Callable[[ApiClient, dict[str, str]], Awaitable[None]]
INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed")

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


async def _list_page(
    request: Request,
    api: ApiClient,
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
    tag: str = "",
) -> Response:
    context = await framed(request, api, "Routers")
    filters = {"tags": tag} if tag else {}
    try:
        routers, externals = await asyncio.gather(
            owned(api, "routers", context["session"].project_id, **filters),
            external_networks(api),
        )
    except ApiError as exc:
        routers, externals = [], []
        error, status = error or exc.message, status if error else exc.status
    context.update(
        rows=sorted(routers, key=lambda r: str(r.get("name") or r["id"])),
        network_names=names_by_id(externals),
        externals=externals,
        error=error,
        form=form or {},
        list_url=LIST,
        tag=tag,
    )
    return render(request, "routers/list.html", context, status)


@router.get(LIST)
async def routers(request: Request, tag: str = Query("", max_length=255)) -> Response:
    """The project's routers, filtered by a label with Neutron's ``tags`` (as
    ``openstack router list --tags``)."""
    label = labels.normalize(tag) if tag.strip() else ""
    async with ApiClient(request, session_token(request)) as api:
        return await _list_page(request, api, tag=label)


@router.post(LIST)
async def create_router(request: Request) -> Response:
    form = await read_form(request)
    attrs: dict[str, Any] = {"admin_state_up": True}
    if text(form, "name"):
        attrs["name"] = text(form, "name")
    if text(form, "network_id"):
        attrs["external_gateway_info"] = {"network_id": text(form, "network_id")}
    async with ApiClient(request, session_token(request)) as api:
        try:
            found = await created(api, "routers", attrs)
        except ApiError as exc:
            return await _list_page(request, api, exc.message, exc.status, form)
    return redirect(request, f"{LIST}/{found['id']}")


async def _detail_page(
    request: Request, api: ApiClient, router_id: str, error: str = "", status: int = 200
) -> Response:
    context = await framed(request, api, "Router")
    try:
        found, ports, subnets, externals = await asyncio.gather(
            shown(api, "routers", router_id),
            listed(api, "ports", device_id=router_id),
            owned(api, "subnets", context["session"].project_id),
            external_networks(api),
        )
    except ApiError as exc:  # another project's router is Neutron's 404, in its words
        context.update(status=exc.status, message=exc.message, title="Router not shown")
        return render(request, "error.html", context, exc.status)
    subnet_by_id = {str(s["id"]): s for s in subnets}
    interfaces = [
        {"port": p, "ip": ip, "subnet": subnet_by_id.get(str(ip["subnet_id"]), {})}
        for p in ports
        if p.get("device_owner") in INTERFACE_OWNERS
        for ip in p.get("fixed_ips", [])
    ]
    on_router = {str(i["ip"]["subnet_id"]) for i in interfaces}
    external_ids = {str(n["id"]) for n in externals}
    context.update(
        title=found.get("name") or found["id"],
        router=found,
        gateway=found.get("external_gateway_info"),
        network_names=names_by_id(externals),
        externals=externals,
        interfaces=interfaces,
        # Subnets an interface could go on: not on this router already, not external.
        free_subnets=[
            s
            for s in sorted(subnets, key=lambda s: str(s.get("name") or s.get("cidr")))
            if str(s["id"]) not in on_router and str(s.get("network_id")) not in external_ids
        ],
        error=error,
        list_url=LIST,
    )
    return render(request, "routers/detail.html", context, status)


@router.get(LIST + "/{router_id}")
async def router_page(request: Request, router_id: str) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _detail_page(request, api, router_id)


async def _act(request: Request, router_id: str, call: Call, done: str) -> Response:
    """Run one Neutron call for the router's page: on success go to ``done``, on refusal
    show the router's page with Neutron's words."""
    form = await read_form(request)
    return await call_then_redirect(
        request,
        lambda api: call(api, form),
        done,
        lambda api, exc: _detail_page(request, api, router_id, exc.message, exc.status),
    )


@router.post(LIST + "/{router_id}/gateway")
async def set_gateway(request: Request, router_id: str) -> Response:
    async def call(api: ApiClient, form: dict[str, str]) -> None:
        info = {"network_id": text(form, "network_id")}
        await updated(api, "routers", router_id, {"external_gateway_info": info})

    return await _act(request, router_id, call, f"{LIST}/{router_id}")


@router.post(LIST + "/{router_id}/gateway/clear")
async def clear_gateway(request: Request, router_id: str) -> Response:
    async def call(api: ApiClient, form: dict[str, str]) -> None:
        await updated(api, "routers", router_id, {"external_gateway_info": {}})

    return await _act(request, router_id, call, f"{LIST}/{router_id}")


@router.post(LIST + "/{router_id}/interfaces")
async def add_interface(request: Request, router_id: str) -> Response:
    async def call(api: ApiClient, form: dict[str, str]) -> None:
        body = {"subnet_id": text(form, "subnet_id")}
        await api.call("PUT", item_path("routers", router_id, "add_router_interface"), json=body)

    return await _act(request, router_id, call, f"{LIST}/{router_id}")


@router.post(LIST + "/{router_id}/interfaces/remove")
async def remove_interface(request: Request, router_id: str) -> Response:
    async def call(api: ApiClient, form: dict[str, str]) -> None:
        body = {"subnet_id": text(form, "subnet_id")}
        await api.call("PUT", item_path("routers", router_id, "remove_router_interface"), json=body)

    return await _act(request, router_id, call, f"{LIST}/{router_id}")


@router.post(LIST + "/{router_id}/labels")
async def add_label(request: Request, router_id: str) -> Response:
    """Neutron's ``PUT /routers/{id}/tags/{tag}`` (``openstack router set --tag``)."""

    async def call(api: ApiClient, form: dict[str, str]) -> None:
        tag = labels.normalize(form.get("label", ""))
        if not tag:
            raise ApiError(400, labels.EMPTY)
        await api.call("PUT", f"{item_path('routers', router_id, 'tags')}/{segment(tag)}")

    return await _act(request, router_id, call, f"{LIST}/{router_id}")


@router.post(LIST + "/{router_id}/labels/remove")
async def remove_label(request: Request, router_id: str) -> Response:
    async def call(api: ApiClient, form: dict[str, str]) -> None:
        tag = form.get("label", "")
        await api.call("DELETE", f"{item_path('routers', router_id, 'tags')}/{segment(tag)}")

    return await _act(request, router_id, call, f"{LIST}/{router_id}")


@router.post(LIST + "/{router_id}/delete")
async def delete_router(request: Request, router_id: str) -> Response:
    async def call(api: ApiClient, form: dict[str, str]) -> None:
        await deleted(api, "routers", router_id)

    return await _act(request, router_id, call, LIST)

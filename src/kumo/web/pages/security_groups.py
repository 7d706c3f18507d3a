"""Security groups: the project's groups, creating one, one group's rules (add, delete) and
deleting a group.

The calls of ``openstack security group create/delete`` and ``openstack security group rule
create/delete``: a rule is direction, ethertype, protocol, a port range and either a remote
CIDR or a remote group, sent as typed; Neutron checks them and its words are shown.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from kumo.web.apiclient import ApiClient, ApiError
from kumo.web.forms import read_form
from kumo.web.pages.neutron import (
    created,
    deleted,
    framed,
    names_by_id,
    number,
    owned,
    shown,
    text,
)
from kumo.web.routing import DashboardRoute, call_then_redirect, redirect
from kumo.web.session import session_token
from kumo.web.templating import render

LIST = "/project/security-groups"
PROTOCOLS = ("tcp", "udp", "icmp", "ipv6-icmp")  # offered by name; any other typed as such
RULE_DEFAULTS = {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp"}

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def rule_attrs(group_id: str, form: dict[str, str]) -> dict[str, Any]:
    """The body of ``POST /security-group-rules`` from the rule form (the CLI's --ingress/
    --egress, --ethertype, --protocol, --dst-port, --remote-ip, --remote-group)."""
    attrs: dict[str, Any] = {
        "security_group_id": group_id,
        "direction": text(form, "direction") or "ingress",
        "ethertype": text(form, "ethertype") or "IPv4",
    }
    protocol = text(form, "protocol")
    if protocol and protocol != "any":
        attrs["protocol"] = number(protocol)
    for field in ("port_range_min", "port_range_max"):
        if text(form, field):
            attrs[field] = number(text(form, field))
    if text(form, "remote_ip_prefix"):
        attrs["remote_ip_prefix"] = text(form, "remote_ip_prefix")
    if text(form, "remote_group_id"):
        attrs["remote_group_id"] = text(form, "remote_group_id")
    return attrs


async def _list_page(
    request: Request,
    api: ApiClient,
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    context = await framed(request, api, "Security groups")
    try:
        groups = await owned(api, "security-groups", context["session"].project_id)
    except ApiError as exc:
        groups = []
        error, status = error or exc.message, status if error else exc.status
    context.update(
        rows=sorted(groups, key=lambda g: str(g.get("name") or g["id"])),
        error=error,
        form=form or {},
        list_url=LIST,
    )
    return render(request, "security_groups/list.html", context, status)


@router.get(LIST)
async def security_groups(request: Request) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _list_page(request, api)


@router.post(LIST)
async def create_group(request: Request) -> Response:
    form = await read_form(request)
    attrs = {"name": text(form, "name"), "description": text(form, "description")}
    async with ApiClient(request, session_token(request)) as api:
        try:
            found = await created(api, "security-groups", attrs)
        except ApiError as exc:
            return await _list_page(request, api, exc.message, exc.status, form)
    return redirect(request, f"{LIST}/{found['id']}")


async def _detail_page(
    request: Request,
    api: ApiClient,
    group_id: str,
    error: str = "",
    status: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    context = await framed(request, api, "Security group")
    try:
        group, groups = await asyncio.gather(
            shown(api, "security-groups", group_id),
            owned(api, "security-groups", context["session"].project_id),
        )
    except ApiError as exc:  # another project's group is Neutron's 404, in its words
        context.update(status=exc.status, message=exc.message, title="Security group not shown")
        return render(request, "error.html", context, exc.status)
    rules = sorted(
        group.get("security_group_rules") or [],
        key=lambda r: (
            str(r.get("direction")),
            str(r.get("ethertype")),
            str(r.get("protocol")),
            r.get("port_range_min") or 0,
        ),
    )
    context.update(
        title=group.get("name") or group["id"],
        group=group,
        rules=rules,
        group_names=names_by_id(groups),
        groups=sorted(groups, key=lambda g: str(g.get("name") or g["id"])),
        protocols=PROTOCOLS,
        error=error,
        form=form or RULE_DEFAULTS,
        list_url=LIST,
    )
    return render(request, "security_groups/detail.html", context, status)


@router.get(LIST + "/{group_id}")
async def group_page(request: Request, group_id: str) -> Response:
    async with ApiClient(request, session_token(request)) as api:
        return await _detail_page(request, api, group_id)


@router.post(LIST + "/{group_id}/rules")
async def add_rule(request: Request, group_id: str) -> Response:
    form = await read_form(request)
    return await call_then_redirect(
        request,
        lambda api: created(api, "security-group-rules", rule_attrs(group_id, form)),
        f"{LIST}/{group_id}",
        lambda api, exc: _detail_page(request, api, group_id, exc.message, exc.status, form),
    )


@router.post(LIST + "/{group_id}/rules/{rule_id}/delete")
async def delete_rule(request: Request, group_id: str, rule_id: str) -> Response:
    return await call_then_redirect(
        request,
        lambda api: deleted(api, "security-group-rules", rule_id),
        f"{LIST}/{group_id}",
        lambda api, exc: _detail_page(request, api, group_id, exc.message, exc.status),
    )


@router.post(LIST + "/{group_id}/delete")
async def delete_group(request: Request, group_id: str) -> Response:
    # e.g. the default group, or one in use: Neutron's words on the group's page
    return await call_then_redirect(
        request,
        lambda api: deleted(api, "security-groups", group_id),
        LIST,
        lambda api, exc: _detail_page(request, api, group_id, exc.message, exc.status),
    )

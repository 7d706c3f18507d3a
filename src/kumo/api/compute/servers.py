"""/compute/v2.1/servers: create, list, show, update, delete and actions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import QueryParams

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute import action_event_views as event_views
from kumo.api.compute import remote_consoles, server_actions, server_bodies
from kumo.api.compute import server_views as views
from kumo.api.compute.common import body_member, bool_param, int_param, links
from kumo.api.compute.microversion import api_version
from kumo.api.compute.security_groups import nova_groups
from kumo.api.image.store import purge_image_data
from kumo.api.state import AppState, app_state
from kumo.core import operations, wakeup
from kumo.core.compute import (
    action_events,
    aggregates,
    nics,
    reports,
    server_listing,
    server_tags,
    servers,
)
from kumo.core.compute import server_operations as ops
from kumo.core.compute import services as compute_services
from kumo.core.errors import BadRequest, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.policy import Context
from kumo.core.volume import attachments as volume_attachments
from kumo.db import models as m
from kumo.db.types import utcnow

router = APIRouter(prefix="/compute/v2.1")


def _hosts(
    state: AppState, instances: list[m.Instance], session: Session | None = None
) -> dict[str, tuple[str, str, str]]:
    """Name, host_status (2.16) and availability zone of each host the servers run on, by
    host id (Nova shows a server in the zone of the host it runs on now); in the caller's
    transaction when it has one (one connection checkout less per listing)."""
    ids = {i.host_id for i in instances if i.host_id}
    if not ids:
        return {}
    if session is None:
        with state.db.session() as own:
            return _hosts(state, instances, own)
    timeout = state.config.hosts.heartbeat_timeout
    now = utcnow()
    zones = aggregates.host_zones(session)
    rows = session.scalars(select(m.Host).where(m.Host.id.in_(ids)))
    return {
        h.id: (
            h.name,
            compute_services.host_status(h, timeout, now),
            aggregates.zone_of(zones, h.id),
        )
        for h in rows
    }


def _details(
    state: AppState,
    who: Caller,
    version: APIVersion,
    instances: list[m.Instance],
    session: Session,
) -> list[dict[str, Any]]:
    found = _hosts(state, instances, session)
    addresses = nics.addresses_of(session, instances)
    groups = nics.security_group_names(session, instances)
    volumes = volume_attachments.attached_to(session, [i.id for i in instances])
    tags = _tags_of(session, version, instances)
    result = []
    for i in instances:
        name, status, zone = found.get(i.host_id or "", (None, "", i.availability_zone))
        view = views.detail(state, who.ctx, version, i, name, status, zone, tags.get(i.id, []))
        view["addresses"] = nics.addresses_view(addresses.get(i.id, []))
        view["os-extended-volumes:volumes_attached"] = [
            {"id": a.volume_id, "delete_on_termination": a.delete_on_termination}
            if version.at_least("2.3")
            else {"id": a.volume_id}
            for a in volumes.get(i.id, [])
        ]
        if groups.get(i.id):  # Nova leaves the key out for a server in no group
            view["security_groups"] = [{"name": n} for n in groups[i.id]]
        result.append(view)
    return result


def _tags_of(
    session: Session, version: APIVersion, instances: list[m.Instance]
) -> dict[str, list[str]]:
    """The servers' tags when the view shows them (2.26), by server id."""
    if not version.at_least("2.26"):
        return {}
    return server_tags.tags_of(session, [i.id for i in instances])


def _core(
    state: AppState, who: Caller, version: APIVersion, instance: m.Instance
) -> dict[str, Any]:
    """The update/rebuild answer: Nova's core view of one server."""
    with state.db.session() as session:
        name = _hosts(state, [instance], session).get(instance.host_id or "", (None, "", ""))[0]
        addresses = nics.addresses_of(session, [instance]).get(instance.id, [])
        tags = _tags_of(session, version, [instance]).get(instance.id, [])
    view = views.core(state, who.ctx, version, instance, name, tags)
    view["addresses"] = nics.addresses_view(addresses, extended=False)
    return view


def _filters(request: Request, who: Caller, version: APIVersion) -> server_listing.ListFilters:
    q = request.query_params
    ctx = who.ctx
    all_projects = bool(
        bool_param(q, "all_tenants") or ("all_tenants" in q and q.get("all_tenants") == "")
    )
    changes = q.get("changes-since")
    since = None
    if changes:
        try:
            since = dt.datetime.fromisoformat(changes.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(
                f"Invalid input for query parameters changes-since. Value: {changes}."
            ) from None
        if since.tzinfo is not None:
            since = since.astimezone(dt.UTC).replace(tzinfo=None)
    return server_listing.ListFilters(
        all_projects=all_projects and ctx.is_admin,
        project_id=(q.get("project_id") or q.get("tenant_id")) if ctx.is_admin else None,
        name=q.get("name"),
        statuses=tuple(q.getlist("status")),
        reject_unknown_status=version.at_least("2.38"),
        host=q.get("host"),
        image=q.get("image"),
        flavor=q.get("flavor"),
        changes_since=since,
        deleted=bool(bool_param(q, "deleted")) if ctx.is_admin else False,
        tags=_tag_filters(q) if version.at_least("2.26") else server_tags.TagFilters(),
        ip=q.get("ip"),
        ip6=q.get("ip6"),
        limit=int_param(q, "limit"),
        marker=q.get("marker"),
        sort_key=q.get("sort_key") or "created_at",
        sort_dir=q.get("sort_dir") or "desc",
    )


def _tag_filters(q: QueryParams) -> server_tags.TagFilters:
    """From 2.26: each filter a comma-separated list, as Nova splits it (an empty value is
    the one tag "", which no server has); below, Nova ignores them."""

    def tags(name: str) -> frozenset[str] | None:
        value = q.get(name)
        return None if value is None else frozenset(value.split(","))

    return server_tags.TagFilters(
        all_of=tags("tags"),
        any_of=tags("tags-any"),
        not_all_of=tags("not-tags"),
        not_any_of=tags("not-tags-any"),
    )


def _page_links(
    state: AppState, request: Request, rows: list[m.Instance], limit: int | None
) -> dict[str, Any]:
    if limit is None or len(rows) < limit or not rows:
        return {}
    params = dict(request.query_params)
    params["marker"] = rows[-1].id
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return {
        "servers_links": [
            {"rel": "next", "href": f"{state.config.public_url}{request.url.path}?{query}"}
        ]
    }


@router.get("/servers")
def list_servers(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    f = _filters(request, who, version)
    with state.db.session() as session:
        rows = server_listing.list_servers(session, who.ctx, f)
    return {
        "servers": [views.brief(state, i) for i in rows],
        **_page_links(state, request, rows, f.limit),
    }


@router.get("/servers/detail")
def list_servers_detail(
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    f = _filters(request, who, version)
    f.lean = True
    with state.db.session() as session:
        rows = server_listing.list_servers(session, who.ctx, f)
        shown = _details(state, who, version, rows, session)
    return {
        "servers": shown,
        **_page_links(state, request, rows, f.limit),
    }


@router.post("/servers", status_code=202)
def create_server(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> JSONResponse:
    data = body_member(body, "server")
    request = server_bodies.parse_create(body, data, version)
    created = operations.run(state.db, who.ctx, ops.CREATE, request, state.env).value
    if (body.get("return_reservation_id") if isinstance(body, dict) else False) or data.get(
        "return_reservation_id"
    ):
        return JSONResponse({"reservation_id": created.reservation_id}, status_code=202)
    first = created.instances[0]
    server = {
        "id": first.id,
        "links": links(state, "servers", first.id),
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": _requested_groups(data) if first.nics else [],
        "adminPass": created.admin_pass,
    }
    return JSONResponse(
        {"server": server},
        status_code=202,
        headers={"Location": links(state, "servers", first.id)[0]["href"]},
    )


def _requested_groups(data: dict[str, Any]) -> list[dict[str, str]]:
    """Nova's create answer echoes the groups asked for (``default`` when none)."""
    value = data.get("security_groups")
    if isinstance(value, list) and value:
        return [{"name": str(g.get("name"))} for g in value if isinstance(g, dict)]
    return [{"name": "default"}]


@router.get("/servers/{server_id}")
def show_server(
    server_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        view = _details(state, who, version, [instance], session)[0]
    return {"server": view}


@router.put("/servers/{server_id}")
def update_server(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    data = body_member(body, "server")
    with state.db.session() as session:
        instance = servers.update(
            session, who.ctx, server_id, server_bodies.parse_update(data, version)
        )
    return {"server": _core(state, who, version, instance)}


@router.delete("/servers/{server_id}", status_code=204)
def delete_server(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:
    # A delete wins over the scheduler or an agent report that changed the row just before
    # (the runner repeats a lost update).
    done = operations.run(state.db, who.ctx, ops.DELETE, ops.Delete(server_id), state.env)
    purge_image_data(state, done.value.dropped_images)
    return Response(status_code=204)


CONSOLE_WAIT = 1.0  # seconds a console reader waits for the agent's fresh copy


@router.post("/servers/{server_id}/action")
def server_action(
    server_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    if not isinstance(body, dict) or len(body) != 1:
        raise BadRequest("Invalid action: the body must name exactly one action.")
    action, args = next(iter(body.items()))
    ctx = who.ctx
    if action == "os-getConsoleOutput":
        return _console_output(state, ctx, server_id, args)
    if remote_consoles.is_legacy_action(action, version):
        return remote_consoles.legacy_action(state, who, server_id, action, args)
    found = server_actions.lookup(action, version)
    if found is None:
        with state.db.session() as session:
            servers.get(session, ctx, server_id)  # 404 first
        raise BadRequest(f"There is no such action: {action}")
    parse, operation = found
    done = operations.run(state.db, ctx, operation, parse(server_id, args, version), state.env)
    purge_image_data(state, done.value.dropped_images)
    answer = _ANSWERS.get(action)
    return answer(state, who, version, done) if answer else Response(status_code=202)


Done = operations.Result[ops.Answer]


def _rebuilt(state: AppState, who: Caller, version: APIVersion, done: Done) -> Response:
    assert done.instance is not None
    view = _core(state, who, version, done.instance)
    view["adminPass"] = done.value.admin_pass
    return JSONResponse({"server": view}, status_code=202)


def _imaged(state: AppState, who: Caller, version: APIVersion, done: Done) -> Response:
    # Before 2.45 the image is named only by the Location header (an image URL).
    location = f"{state.config.public_url}/image/v2/images/{done.value.image_id}"
    return Response(status_code=202, headers={"Location": location})


def _backed_up(state: AppState, who: Caller, version: APIVersion, done: Done) -> Response:
    # Nova names the backup (a compute image URL) only when rotation keeps it.
    if done.value.rotation == 0:
        return Response(status_code=202)
    location = f"{state.config.public_url}/compute/v2.1/images/{done.value.image_id}"
    return Response(status_code=202, headers={"Location": location})


def _rescued(state: AppState, who: Caller, version: APIVersion, done: Done) -> Response:
    return JSONResponse({"adminPass": done.value.admin_pass})


def _confirmed(state: AppState, who: Caller, version: APIVersion, done: Done) -> Response:
    return Response(status_code=204)  # as Nova answers it (the other actions: 202)


def _evacuated(state: AppState, who: Caller, version: APIVersion, done: Done) -> Response:
    # 200, not 202 (Nova keeps it for compatibility); the password only before 2.14.
    if version.at_least("2.14"):
        return Response(status_code=200)
    return JSONResponse({"adminPass": done.value.admin_pass})


# The actions whose answer is not an empty 202, and how each answers.
_ANSWERS: dict[str, Callable[[AppState, Caller, APIVersion, Done], Response]] = {
    "rebuild": _rebuilt,
    "createImage": _imaged,
    "createBackup": _backed_up,
    "rescue": _rescued,
    "confirmResize": _confirmed,
    "evacuate": _evacuated,
}


def _console_output(state: AppState, ctx: Context, server_id: str, args: Any) -> Response:
    """os-getConsoleOutput: a read, not an operation (it changes nothing)."""
    with state.db.session() as session:
        instance = servers.get(session, ctx, server_id)
        length = reports.parse_console_length(args)
        reports.console_output(session, instance, length)  # 409 when not on a host
        host_id = instance.host_id
    if host_id is not None:
        # Fresh from the guest, as Nova reads it from the hypervisor: ask the agent and
        # wait briefly for its post; an agent that does not answer in time leaves the
        # copy it posted last.
        mark = wakeup.want_console(host_id, server_id)
        if mark is not None:
            wakeup.wait(wakeup.console_topic(server_id), mark, CONSOLE_WAIT)
    with state.db.session() as session:
        instance = servers.get(session, ctx, server_id)
        output = reports.console_output(session, instance, length)
    return JSONResponse({"output": output})


@router.get("/servers/{server_id}/ips")
def server_ips(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """The server's addresses by network (Nova's ips: version and address only)."""
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        found = nics.addresses_of(session, [instance]).get(instance.id, [])
    return {"addresses": nics.addresses_view(found, extended=False)}


@router.get("/servers/{server_id}/ips/{network_label}")
def server_ips_on_network(
    server_id: str,
    network_label: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        found = nics.addresses_of(session, [instance]).get(instance.id, [])
    view = nics.addresses_view(found, extended=False)
    if network_label not in view:
        raise NotFound("Instance is not a member of specified network")
    return {network_label: view[network_label]}


@router.get("/servers/{server_id}/os-security-groups")
def server_security_groups(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """The groups on the server's ports, in Nova's security group shape."""
    with state.db.session() as session:
        instance = servers.get(session, who.ctx, server_id)
        return {"security_groups": nova_groups(session, nics.security_groups_of(session, instance))}


@router.get("/servers/{server_id}/os-virtual-interfaces")
def virtual_interfaces(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """A nova-network API (2.12 added net ids; 2.44 removed it). A Neutron-style cloud has no
    virtual interface records, and Nova then answers 400 for a server the caller can see;
    ports are listed by the network API instead."""
    with state.db.session() as session:
        servers.get(session, who.ctx, server_id)
    raise BadRequest("Listing virtual interfaces is not supported by this cloud.")


@router.get("/servers/{server_id}/os-instance-actions")
def instance_actions(
    server_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    """From 2.21 the actions of a deleted server are still listed (404 before)."""
    with state.db.session() as session:
        servers.get(session, who.ctx, server_id, include_deleted=version.at_least("2.21"))
        rows = list(
            session.scalars(
                select(m.InstanceAction)
                .where(m.InstanceAction.instance_id == server_id)
                .order_by(m.InstanceAction.start_time.desc(), m.InstanceAction.id.desc())
            )
        )
    return {"instanceActions": [_action_view(a) for a in rows]}


def _action_view(a: m.InstanceAction) -> dict[str, Any]:
    return {
        "action": a.action,
        "instance_uuid": a.instance_id,
        "request_id": a.request_id,
        "user_id": a.user_id,
        "project_id": a.project_id,
        "start_time": a.start_time.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "message": a.message,
    }


@router.get("/servers/{server_id}/os-instance-actions/{request_id}")
def instance_action(
    server_id: str,
    request_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    with state.db.session() as session:
        instance = servers.get(
            session, who.ctx, server_id, include_deleted=version.at_least("2.21")
        )
        row = session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == server_id, m.InstanceAction.request_id == request_id
            )
        ).first()
        if row is None:
            raise NotFound(f"Action {request_id} not found")
        view = _action_view(row)
        if event_views.shows_events(who.ctx, version):
            view["events"] = event_views.event_views(
                action_events.events_of(session, row),
                row.project_id or instance.project_id,
                who.ctx,
                version,
            )
    return {"instanceAction": view}

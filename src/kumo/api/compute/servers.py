"""/compute/v2.1/servers: create, list, show, update, delete and actions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute import server_views as views
from kumo.api.compute.common import body_member, bool_param, int_param, links
from kumo.api.compute.microversion import api_version
from kumo.api.compute.security_groups import nova_groups
from kumo.api.image.store import purge_image_data
from kumo.api.state import AppState, app_state
from kumo.api.volume.volumes import placement, wake_host
from kumo.core import wakeup
from kumo.core.compute import (
    aggregates,
    migrations,
    moves,
    nics,
    reports,
    server_groups,
    servers,
    shelve,
)
from kumo.core.compute import services as compute_services
from kumo.core.compute.placement import free_on
from kumo.core.errors import BadRequest, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.policy import Context
from kumo.core.volume import attachments as volume_attachments
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.lost_updates import retry_lost_updates
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
    result = []
    for i in instances:
        name, status, zone = found.get(i.host_id or "", (None, "", i.availability_zone))
        view = views.detail(state, who.ctx, version, i, name, status, zone)
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


def _core(
    state: AppState, who: Caller, version: APIVersion, instance: m.Instance
) -> dict[str, Any]:
    """The update/rebuild answer: Nova's core view of one server."""
    with state.db.session() as session:
        name = _hosts(state, [instance], session).get(instance.host_id or "", (None, "", ""))[0]
        addresses = nics.addresses_of(session, [instance]).get(instance.id, [])
    view = views.core(state, who.ctx, version, instance, name)
    view["addresses"] = nics.addresses_view(addresses, extended=False)
    return view


def _filters(request: Request, who: Caller, version: APIVersion) -> servers.ListFilters:
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
    tags = q.get("tags")
    return servers.ListFilters(
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
        tags=tags.split(",") if tags else None,
        ip=q.get("ip"),
        ip6=q.get("ip6"),
        limit=int_param(q, "limit"),
        marker=q.get("marker"),
        sort_key=q.get("sort_key") or "created_at",
        sort_dir=q.get("sort_dir") or "desc",
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
        rows = servers.list_servers(session, who.ctx, f)
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
        rows = servers.list_servers(session, who.ctx, f)
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
    group_id = server_groups.group_hint(body)
    with state.db.session() as session:
        created = servers.create(
            session,
            who.ctx,
            data,
            version,
            group_id,
            volume_placement=placement(state),
            force_config_drive=state.config.compute.force_config_drive,
        )
    for host_id in created.new_volume_hosts:
        wake_host(host_id)
    wakeup.notify(wakeup.SCHEDULER)
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
        instance = servers.update(session, who.ctx, server_id, data, version)
    return {"server": _core(state, who, version, instance)}


@router.delete("/servers/{server_id}", status_code=204)
def delete_server(
    server_id: str, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> Response:

    def delete() -> tuple[str | None, list[str]]:
        with state.db.session() as session:
            instance = servers.delete(session, who.ctx, server_id)
            return instance.host_id, deleted_shelved_image(instance)

    # A delete wins over the scheduler or an agent report that changed the row just before.
    host_id, dropped_images = retry_lost_updates(delete)
    purge_image_data(state, dropped_images)
    if host_id:
        wakeup.notify(wakeup.host_topic(host_id))
    return Response(status_code=204)


def deleted_shelved_image(instance: m.Instance) -> list[str]:
    """The shelved snapshot a delete that finished at once dropped (its data goes next)."""
    return [instance.shelved_image_id] if instance.deleted and instance.shelved_image_id else []


def _free_on_host(
    session: Session, state: AppState, server_id: str
) -> tuple[float, float, float] | None:
    """The free capacity of the server's host, under the claims lock (resize in place)."""
    lock_for_claims(session)  # first: on SQLite it must open the transaction
    instance = session.get(m.Instance, server_id)
    if instance is None or instance.host_id is None:
        return None
    return free_on(
        session, state.config.scheduler, state.config.hosts.heartbeat_timeout, instance.host_id
    )


CONSOLE_WAIT = 1.0  # seconds a console reader waits for the agent's fresh copy


@dataclass
class _ActionDone:
    """What an action's transaction leaves for its answer and for the wake-ups."""

    instance: m.Instance
    moving_to: str | None = None  # the other host of a move, which has its part to do
    dropped_images: list[str] = field(default_factory=list)
    admin_pass: str | None = None
    image_id: str | None = None
    rotation: int = 0
    evacuated_pass: str | None = None


def _perform(
    session: Session,
    state: AppState,
    ctx: Context,
    server_id: str,
    action: str,
    args: Any,
    version: APIVersion,
) -> _ActionDone:
    """One server action in the caller's transaction: check, then write."""
    moving_to: str | None = None
    dropped_images: list[str] = []
    admin_pass: str | None = None
    image_id: str | None = None
    rotation = 0
    evacuated_pass: str | None = None
    placing = (state.config.scheduler, state.config.hosts.heartbeat_timeout)  # for moves
    if action in servers.ACTIONS:
        instance = servers.act(session, ctx, server_id, action)
    elif action == "reboot":
        kind = args.get("type") if isinstance(args, dict) else None
        instance = servers.reboot(session, ctx, server_id, kind)
    elif action == "lock":
        reason = args.get("locked_reason") if isinstance(args, dict) else None
        instance = servers.set_lock(session, ctx, server_id, True, reason)
    elif action == "unlock":
        instance = servers.set_lock(session, ctx, server_id, False)
    elif action == "rebuild":
        shelved = servers.get(session, ctx, server_id).shelved_image_id
        instance, admin_pass = servers.rebuild(session, ctx, server_id, args, version)
        dropped_images += [shelved] if shelved else []
    elif action == "shelve":
        instance = shelve.shelve(session, ctx, server_id, args)
    elif action == "shelveOffload":
        instance = shelve.shelve_offload(session, ctx, server_id, args)
    elif action == "unshelve":
        instance = shelve.unshelve(session, ctx, server_id, args, version)
    elif action == "resize":
        instance = servers.resize(
            session, ctx, server_id, args, _free_on_host(session, state, server_id)
        )
    elif action == "confirmResize":
        cold = moves.waiting_cold(session, servers.get(session, ctx, server_id))
        moving_to = cold.source_host_id if cold is not None else None
        instance = servers.confirm_resize(session, ctx, server_id)
    elif action == "revertResize":
        cold = moves.waiting_cold(session, servers.get(session, ctx, server_id))
        moving_to = cold.source_host_id if cold is not None else None
        instance = servers.revert_resize(session, ctx, server_id)
    elif action == "forceDelete":
        instance = servers.delete(session, ctx, server_id, force=True)
        dropped_images += deleted_shelved_image(instance)
    elif action == "createImage":
        instance, snapshot = servers.create_image(session, ctx, server_id, args)
        image_id = snapshot.id
    elif action == "createBackup":
        instance, snapshot, rotation = servers.create_backup(session, ctx, server_id, args)
        image_id = snapshot.id
    elif action == "rescue":
        instance, admin_pass = servers.rescue(session, ctx, server_id, args)
    elif action == "unrescue":
        instance = servers.unrescue(session, ctx, server_id)
    elif action == "trigger_crash_dump" and version.at_least("2.17"):
        instance = servers.trigger_crash_dump(session, ctx, server_id, args)
    elif action == "os-migrateLive":
        request = migrations.parse_live(args, version)
        instance, migration = migrations.live_migrate(session, ctx, server_id, request, *placing)
        moving_to = migration.dest_host_id
    elif action == "migrate":
        moves.parse_migrate(args, version)
        instance, migration = moves.cold_migrate(session, ctx, server_id, *placing)
        moving_to = migration.dest_host_id
    elif action == "evacuate":
        evacuation = moves.parse_evacuate(args, version)
        instance, migration = moves.evacuate(session, ctx, server_id, evacuation, *placing)
        evacuated_pass = evacuation.admin_pass
    elif action in ("addFixedIp", "removeFixedIp"):
        instance = servers.get(session, ctx, server_id)
        servers.record_action(session, ctx, instance.id, action)
        if action == "addFixedIp":
            nics.add_fixed_ip(session, ctx, instance, _arg(args, "networkId"))
        else:
            nics.remove_fixed_ip(session, ctx, instance, _arg(args, "address"))
    elif action in ("addSecurityGroup", "removeSecurityGroup"):
        instance = servers.get(session, ctx, server_id)
        nics.change_security_group(
            session, ctx, instance, _arg(args, "name"), add=action == "addSecurityGroup"
        )
    else:
        servers.get(session, ctx, server_id)
        raise BadRequest(f"There is no such action: {action}")
    return _ActionDone(
        instance, moving_to, dropped_images, admin_pass, image_id, rotation, evacuated_pass
    )


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

    def attempt() -> _ActionDone:
        with state.db.session() as session:
            return _perform(session, state, ctx, server_id, action, args, version)

    # No action depends on the row version the client saw: one whose write lost to the
    # scheduler or an agent report repeats on the fresh row, its checks run again.
    done = retry_lost_updates(attempt)
    instance = done.instance
    host_id, moving_to = instance.host_id, done.moving_to
    purge_image_data(state, done.dropped_images)
    if host_id:
        wakeup.notify(wakeup.host_topic(host_id))
    if moving_to:  # the other host of a move has its part to do too
        wakeup.notify(wakeup.host_topic(moving_to))
    if action == "rebuild":
        view = _core(state, who, version, instance)
        view["adminPass"] = done.admin_pass
        return JSONResponse({"server": view}, status_code=202)
    if action == "createImage":
        # Before 2.45 the image is named only by the Location header (an image URL).
        location = f"{state.config.public_url}/image/v2/images/{done.image_id}"
        return Response(status_code=202, headers={"Location": location})
    if action == "createBackup":
        # Nova names the backup (a compute image URL) only when rotation keeps it.
        if done.rotation == 0:
            return Response(status_code=202)
        location = f"{state.config.public_url}/compute/v2.1/images/{done.image_id}"
        return Response(status_code=202, headers={"Location": location})
    if action == "rescue":
        return JSONResponse({"adminPass": done.admin_pass})
    if action == "confirmResize":
        return Response(status_code=204)  # as Nova answers it (the other actions: 202)
    if action == "evacuate":
        # 200, not 202 (Nova keeps it for compatibility); the password only before 2.14.
        if version.at_least("2.14"):
            return Response(status_code=200)
        return JSONResponse({"adminPass": done.evacuated_pass})
    return Response(status_code=202)


def _arg(args: Any, key: str) -> Any:
    if not isinstance(args, dict) or key not in args:
        raise BadRequest(f"Invalid input for field/attribute {key}: it is required.")
    return args[key]


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
        servers.get(session, who.ctx, server_id, include_deleted=version.at_least("2.21"))
        row = session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == server_id, m.InstanceAction.request_id == request_id
            )
        ).first()
    if row is None:
        raise NotFound(f"Action {request_id} not found")
    return {"instanceAction": {**_action_view(row), "events": []}}

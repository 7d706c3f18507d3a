"""Nova's server JSON, per microversion (2.1 to the advertised maximum)."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Any

from kumo.api.compute.common import links
from kumo.api.state import AppState
from kumo.core.compute import states
from kumo.core.microversion import APIVersion
from kumo.core.policy import Context, allowed
from kumo.db import models as m

PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")
_POWER_NAMES = {0: 0, 1: 1, 3: 3, 4: 4, 6: 6, 7: 7}


def _time(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage_time(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%f")


@lru_cache(maxsize=4096)
def host_id_hash(project_id: str, host: str | None) -> str:
    """Nova's hostId: stable per (project, host), revealing neither. Cached: a listing
    repeats the same few pairs for every server."""
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def brief(state: AppState, i: m.Instance) -> dict[str, Any]:
    return {"id": i.id, "name": i.name, "links": links(state, "servers", i.id)}


def core(
    state: AppState,
    ctx: Context,
    version: APIVersion,
    i: m.Instance,
    host_name: str | None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """The server as update and rebuild answer it (before 2.75): Nova's core view, without
    the extension attributes (key_name, OS-EXT-*, ...) that only show and detail add. Tempest
    checks these responses against schemas that forbid any other field. ``tags``: the
    server's tags, shown from 2.26 (in these answers too, as Nova's view shows them)."""
    status = states.status(i.vm_state, i.task_state)
    body: dict[str, Any] = {
        **brief(state, i),
        "status": status,
        "tenant_id": i.project_id,
        "user_id": i.user_id,
        "metadata": dict(i.meta or {}),
        "hostId": host_id_hash(i.project_id, host_name),
        "image": {"id": i.image_id, "links": links(state, "images", i.image_id)}
        if i.image_id
        else "",
        "flavor": {"id": i.flavor_id, "links": links(state, "flavors", i.flavor_id)},
        "created": _time(i.created_at),
        "updated": _time(i.updated_at),
        "addresses": {},
        "accessIPv4": i.access_ipv4,
        "accessIPv6": i.access_ipv6,
        "OS-DCF:diskConfig": "MANUAL",
    }
    if status in PROGRESS_STATUSES:  # Nova shows progress only while it can mean something
        body["progress"] = 100 if status == "ACTIVE" else 0
    if version.at_least("2.9"):
        body["locked"] = i.locked
    if version.at_least("2.19"):
        body["description"] = i.description
    if version.at_least("2.26"):
        body["tags"] = list(tags or [])
    if i.vm_state == "error" and i.fault:
        fault = {
            "code": i.fault.get("code", 500),
            "message": i.fault.get("message", ""),
            "created": i.fault.get("created"),
        }
        if ctx.is_admin or i.fault.get("code", 500) != 500:
            fault["details"] = i.fault.get("details", "")
        body["fault"] = fault
    return body


def detail(
    state: AppState,
    ctx: Context,
    version: APIVersion,
    i: m.Instance,
    host_name: str | None,
    host_status: str = "",
    zone: str | None = None,
    tags: list[str] | None = None,
) -> dict[str, Any]:
    """Show and list-detail: the core view plus the extension attributes; the admin ones
    (OS-EXT-SRV-ATTR, and from 2.16 the state of the server's compute service,
    ``host_status``) by policy. ``zone``: the zone of the server's host (Nova shows that,
    not the one asked for); None falls back to the server's recorded zone."""
    body = core(state, ctx, version, i, host_name, tags)
    body.update(
        {
            "key_name": i.key_name,
            "config_drive": "True" if i.config_drive else "",
            "OS-EXT-AZ:availability_zone": i.availability_zone if zone is None else zone,
            "OS-EXT-STS:vm_state": i.vm_state,
            "OS-EXT-STS:task_state": i.task_state,
            "OS-EXT-STS:power_state": _POWER_NAMES.get(i.power_state, 0),
            "OS-SRV-USG:launched_at": _usage_time(i.launched_at),
            "OS-SRV-USG:terminated_at": _usage_time(i.terminated_at),
            "os-extended-volumes:volumes_attached": [],
        }
    )
    if ctx.is_admin:
        body["OS-EXT-SRV-ATTR:host"] = host_name
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = host_name
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{i.id[:8]}"
        if version.at_least("2.3"):
            body.update(
                {
                    "OS-EXT-SRV-ATTR:reservation_id": i.reservation_id,
                    "OS-EXT-SRV-ATTR:launch_index": i.launch_index,
                    "OS-EXT-SRV-ATTR:hostname": i.hostname,
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "OS-EXT-SRV-ATTR:user_data": i.user_data,
                }
            )
    if version.at_least("2.16") and allowed(ctx, "compute:servers:show:host_status"):
        body["host_status"] = host_status
    return body

"""Compute notifications: Nova's versioned payloads and its legacy ones, from kumo's rows.

Field names, ``nova_object.*`` wrappers and versions are those of Nova's notification
samples (doc/notification_samples in Nova: InstanceActionPayload 1.9, InstanceCreatePayload
1.13, InstanceActionVolumePayload 1.7, FlavorPayload 1.4, IpPayload 1.0, KeypairPayload
1.0, ExceptionPayload 1.1), so a consumer written for Nova (Ceilometer, an operator's
script) reads them unchanged. What kumo does not have is sent as Nova sends its absence
(``kernel_id: ""``, ``os_type: null``...).

Which instance action tells of which event is :data:`EVENTS`: the action's row inserted
is the ``.start``; its finish time set is the ``.end``, or ``.error`` (priority ERROR)
when its message says it failed, as Nova's are.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from kumo.core.compute import server_tags, states
from kumo.db import models as m

ERROR_PREFIX = "Error"  # how a failed action's message starts (kumo.core.monitoring too)


@dataclass(frozen=True)
class Event:
    """The notifications one instance action tells of: Nova's versioned event name
    (``instance.<name>.start|end|error``) and its legacy one (``compute.instance...``, None:
    Nova has none), and the payload class (create and volume ones carry more)."""

    versioned: str
    legacy: str | None
    payload: str = "InstanceActionPayload"


# instance action (kumo.core.compute.servers.ACTIONS, server_operations) -> its events
EVENTS: dict[str, Event] = {
    "create": Event("instance.create", "compute.instance.create", "InstanceCreatePayload"),
    "delete": Event("instance.delete", "compute.instance.delete"),
    "stop": Event("instance.power_off", "compute.instance.power_off"),
    "start": Event("instance.power_on", "compute.instance.power_on"),
    "reboot": Event("instance.reboot", "compute.instance.reboot"),
    "pause": Event("instance.pause", "compute.instance.pause"),
    "unpause": Event("instance.unpause", "compute.instance.unpause"),
    "suspend": Event("instance.suspend", "compute.instance.suspend"),
    "resume": Event("instance.resume", "compute.instance.resume"),
    "rebuild": Event("instance.rebuild", "compute.instance.rebuild"),
    "shelve": Event("instance.shelve", "compute.instance.shelve"),
    "shelveOffload": Event("instance.shelve_offload", "compute.instance.shelve_offload"),
    "unshelve": Event("instance.unshelve", "compute.instance.unshelve"),
    "resize": Event("instance.resize", "compute.instance.resize"),
    "confirmResize": Event("instance.resize_confirm", "compute.instance.resize.confirm"),
    "revertResize": Event("instance.resize_revert", "compute.instance.resize.revert"),
    "rescue": Event("instance.rescue", "compute.instance.rescue"),
    "unrescue": Event("instance.unrescue", "compute.instance.unrescue"),
    "createImage": Event("instance.snapshot", "compute.instance.snapshot"),
    "trigger_crash_dump": Event("instance.trigger_crash_dump", None),
    "attach_interface": Event("instance.interface_attach", None),
    "detach_interface": Event("instance.interface_detach", None),
    "attach_volume": Event(
        "instance.volume_attach", "compute.instance.volume.attach", "InstanceActionVolumePayload"
    ),
    "detach_volume": Event(
        "instance.volume_detach", "compute.instance.volume.detach", "InstanceActionVolumePayload"
    ),
}
# A live migration's phases as kumo has them: asked (Nova's pre-migration on the
# destination starts), finished (the post-migration step ended) or failed (rolled back).
LIVE_MIGRATION = "live-migration"
LIVE_EVENTS = {
    "start": ("instance.live_migration_pre.start", "compute.instance.live_migration.pre.start"),
    "end": ("instance.live_migration_post.end", "compute.instance.live_migration._post.end"),
    "error": (
        "instance.live_migration_rollback.end",
        "compute.instance.live_migration._rollback.end",
    ),
}

PAYLOAD_VERSIONS = {
    "InstanceActionPayload": "1.9",
    "InstanceCreatePayload": "1.13",
    "InstanceActionVolumePayload": "1.7",
}
POWER_STATES = {  # Nova's power_state names in notifications
    states.NOSTATE: "pending",
    states.RUNNING: "running",
    states.PAUSED: "paused",
    states.SHUTDOWN: "shutdown",
    states.CRASHED: "crashed",
    states.SUSPENDED: "suspended",
}


def _obj(name: str, version: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "nova_object.name": name,
        "nova_object.namespace": "nova",
        "nova_object.version": version,
        "nova_object.data": data,
    }


def _time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


# Host id -> (name, when read): the names in payloads and ``publisher_id``. Every message
# of a server needs its host's name, and reading the hosts row in the flush that writes the
# outbox rows kept SQLite's one writer waiting (the largest part of the recorder's cost in
# bench/notifications.py's profile). A name changes only when an agent registers again
# under another one, so a name read within HOST_NAME_TTL seconds is used as it is (a host
# this session changes is read from the session, so this process sees its own renames).
HOST_NAME_TTL = 30.0
_host_names: dict[str, tuple[str, float]] = {}


def host_name(session: Session, instance: m.Instance) -> str | None:
    host_id = instance.host_id
    if not host_id:
        return None
    loaded = session.identity_map.get(identity_key(m.Host, host_id))
    if isinstance(loaded, m.Host):
        _host_names[host_id] = (loaded.name, time.monotonic())
        return loaded.name
    cached = _host_names.get(host_id)
    if cached is not None and time.monotonic() - cached[1] < HOST_NAME_TTL:
        return cached[0]
    name = session.scalar(select(m.Host.name).where(m.Host.id == host_id))
    if name is not None:
        _host_names[host_id] = (name, time.monotonic())
    return name


@dataclass(frozen=True)
class Address:
    """One fixed IP of the server, with what both payload kinds say of it."""

    port_id: str
    mac: str
    address: str
    version: int
    label: str


def bare(instance: m.Instance, action: m.InstanceAction, phase: str) -> bool:
    """Whether the payload tells of no addresses and no block devices without looking:
    the server is deleted (Nova's delete.end has none: they went with it), being created
    in this flush (nothing of it is in the database yet), or this is its create's start
    (Nova's create.start has neither: its network and volumes come later). POST /servers
    flushes the server before the runner records its action, so without the last case the
    create's start ran two queries inside SQLite's write turn for lists Nova sends empty."""
    return (
        instance.deleted
        or inspect(instance).pending
        or (phase == "start" and action.action == "create")
    )


def addresses(session: Session, instance: m.Instance) -> list[Address]:
    """The server's fixed IPs, in the order of its NICs (see :func:`bare` for when a
    payload has none without asking)."""
    port_ids = [nic["port_id"] for nic in instance.nics or [] if nic.get("port_id")]
    if not port_ids:
        return []
    query = (
        select(m.Port, m.IPAllocation.ip_address, m.Network.name)
        .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
        .join(m.Network, m.Network.id == m.Port.network_id)
        .where(m.Port.id.in_(port_ids))
    )
    order = {port_id: i for i, port_id in enumerate(port_ids)}
    found = [
        Address(port.id, port.mac_address, ip, 6 if ":" in ip else 4, label)
        for port, ip, label in session.execute(query)
    ]
    return sorted(found, key=lambda a: (order.get(a.port_id, 0), a.address))


def _flavor(instance: m.Instance) -> dict[str, Any]:
    flavor = instance.flavor or {}
    return _obj(
        "FlavorPayload",
        "1.4",
        {
            "flavorid": str(flavor.get("id", instance.flavor_id)),
            "name": flavor.get("name"),
            "root_gb": int(flavor.get("disk", 0)),
            "vcpus": int(flavor.get("vcpus", 0)),
            "ephemeral_gb": int(flavor.get("ephemeral", 0)),
            "memory_mb": int(flavor.get("ram", 0)),
            "disabled": False,
            "rxtx_factor": 1.0,
            "extra_specs": dict(flavor.get("extra_specs") or {}),
            "projects": None,
            "swap": int(flavor.get("swap", 0)),
            "is_public": True,
            "vcpu_weight": 0,
            "description": None,
        },
    )


def _fault(message: str | None) -> dict[str, Any] | None:
    if not message or not message.startswith(ERROR_PREFIX):
        return None
    text = message[len(ERROR_PREFIX) :].lstrip(": ") or message
    return _obj(
        "ExceptionPayload",
        "1.1",
        {
            "exception": "KumoError",
            "exception_message": text,
            "function_name": "",
            "module_name": "kumo",
            "traceback": "",
        },
    )


def _block_devices(session: Session, instance: m.Instance) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(m.VolumeAttachment)
        .where(
            m.VolumeAttachment.instance_id == instance.id, m.VolumeAttachment.detached_at.is_(None)
        )
        .order_by(m.VolumeAttachment.created_at)
    )
    return [
        _obj(
            "BlockDevicePayload",
            "1.0",
            {
                "boot_index": row.boot_index,
                "delete_on_termination": bool(row.delete_on_termination),
                "device_name": row.mountpoint,
                "tag": row.tag,
                "volume_id": row.volume_id,
            },
        )
        for row in rows
    ]


def versioned_payload(
    session: Session,
    instance: m.Instance,
    action: m.InstanceAction,
    kind: str,
    ips: list[Address],
    looked_up: bool = True,
) -> dict[str, Any]:
    """Nova's versioned payload of ``kind`` for the server as this flush leaves it; with
    ``looked_up`` False (:func:`bare`), without block devices."""
    host = host_name(session, instance)
    data: dict[str, Any] = {
        "architecture": None,
        "availability_zone": instance.availability_zone or None,
        "block_devices": _block_devices(session, instance) if looked_up else [],
        "created_at": _time(instance.created_at),
        "deleted_at": _time(instance.deleted_at),
        "display_name": instance.name,
        "display_description": instance.description,
        "host": host,
        "host_name": instance.hostname,
        "ip_addresses": [
            _obj(
                "IpPayload",
                "1.0",
                {
                    "mac": a.mac,
                    "address": a.address,
                    "port_uuid": a.port_id,
                    "meta": {},
                    "version": a.version,
                    "label": a.label,
                    "device_name": f"tap{a.port_id[:11]}",
                },
            )
            for a in ips
        ],
        "kernel_id": "",
        "key_name": instance.key_name,
        "launched_at": _time(instance.launched_at),
        "image_uuid": instance.image_id or "",
        "metadata": dict(instance.meta or {}),
        "locked": bool(instance.locked),
        "locked_reason": instance.locked_reason,
        "node": host,
        "os_type": None,
        "progress": 0,
        "ramdisk_id": "",
        "reservation_id": instance.reservation_id,
        "state": instance.vm_state,
        "task_state": instance.task_state,
        "power_state": POWER_STATES.get(instance.power_state, "pending"),
        "tenant_id": instance.project_id,
        "terminated_at": _time(instance.terminated_at),
        "auto_disk_config": "MANUAL",
        "flavor": _flavor(instance),
        "updated_at": _time(instance.updated_at),
        "user_id": instance.user_id,
        "uuid": instance.id,
        "request_id": action.request_id,
        "action_initiator_user": action.user_id,
        "action_initiator_project": action.project_id,
        "shares": [],
        "fault": _fault(action.message if action.finish_time is not None else None),
    }
    if kind == "InstanceCreatePayload":
        data["keypairs"] = _keypairs(session, instance)
        data["tags"] = server_tags.tags_of(session, [instance.id]).get(instance.id, [])
        data["trusted_image_certificates"] = None
        data["instance_name"] = f"instance-{instance.id[:8]}"
    elif kind == "InstanceActionVolumePayload":
        data["volume_id"] = _volume_of(session, instance, action)
    return _obj(kind, PAYLOAD_VERSIONS[kind], data)


def _keypairs(session: Session, instance: m.Instance) -> list[dict[str, Any]]:
    if not instance.key_name:
        return []
    row = session.scalars(
        select(m.KeyPair).where(
            m.KeyPair.user_id == instance.user_id, m.KeyPair.name == instance.key_name
        )
    ).first()
    return [
        _obj(
            "KeypairPayload",
            "1.0",
            {
                "user_id": instance.user_id,
                "name": instance.key_name,
                "fingerprint": row.fingerprint if row is not None else None,
                "public_key": instance.key_data or (row.public_key if row is not None else ""),
                "type": row.type if row is not None else "ssh",
            },
        )
    ]


def _volume_of(session: Session, instance: m.Instance, action: m.InstanceAction) -> str | None:
    """The volume an attach or detach action is about: the server's attachment changed
    last (an action row does not name its volume)."""
    row = session.scalars(
        select(m.VolumeAttachment)
        .where(m.VolumeAttachment.instance_id == instance.id)
        .order_by(m.VolumeAttachment.created_at.desc())
        .limit(1)
    ).first()
    return row.volume_id if row is not None else None


def legacy_payload(
    session: Session, instance: m.Instance, action: m.InstanceAction, ips: list[Address]
) -> dict[str, Any]:
    """Nova's legacy ``info_from_instance`` dictionary (what Ceilometer's compute
    notification meters read)."""
    flavor = instance.flavor or {}
    host = host_name(session, instance)
    root_gb, ephemeral_gb = int(flavor.get("disk", 0)), int(flavor.get("ephemeral", 0))
    payload: dict[str, Any] = {
        "tenant_id": instance.project_id,
        "user_id": instance.user_id,
        "instance_id": instance.id,
        "display_name": instance.name,
        "reservation_id": instance.reservation_id,
        "hostname": instance.hostname,
        "instance_type": flavor.get("name", ""),
        "instance_type_id": flavor.get("id", instance.flavor_id),
        "instance_flavor_id": str(flavor.get("id", instance.flavor_id)),
        "architecture": None,
        "memory_mb": int(flavor.get("ram", 0)),
        "disk_gb": root_gb + ephemeral_gb,
        "vcpus": int(flavor.get("vcpus", 0)),
        "root_gb": root_gb,
        "ephemeral_gb": ephemeral_gb,
        "host": host,
        "node": host,
        "availability_zone": instance.availability_zone or None,
        "cell_name": "",
        "created_at": str(instance.created_at),
        "terminated_at": _legacy_time(instance.terminated_at),
        "deleted_at": _legacy_time(instance.deleted_at),
        "launched_at": _legacy_time(instance.launched_at),
        "image_ref_url": instance.image_id,
        "os_type": None,
        "kernel_id": "",
        "ramdisk_id": "",
        "state": instance.vm_state,
        "state_description": instance.task_state or "",
        "progress": "",
        "access_ip_v4": instance.access_ipv4 or None,
        "access_ip_v6": instance.access_ipv6 or None,
        "fixed_ips": [
            {
                "address": a.address,
                "type": "fixed",
                "version": a.version,
                "label": a.label,
                "vif_mac": a.mac,
                "meta": {},
                "floating_ips": [],
            }
            for a in ips
        ],
        "image_meta": {},
        "metadata": dict(instance.meta or {}),
        "request_id": action.request_id,
    }
    fault = _fault(action.message if action.finish_time is not None else None)
    if fault is not None:
        payload["message"] = fault["nova_object.data"]["exception_message"]
    return payload


def _legacy_time(value: dt.datetime | None) -> str:
    return value.isoformat() if value is not None else ""

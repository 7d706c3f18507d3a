"""Servers: read, update and delete; what each action asks of the agent (create:
kumo.core.compute.server_create; listing: server_listing).

Create and the actions are the execute steps of lifecycle operations (kumo.core.operations,
declared in kumo.core.compute.server_operations): the runner has checked the caller's
right, the server's lock and its state against states.SERVER_TRANSITIONS (the transition
each operation declares); these functions check what depends on other rows and write the
desired state with a new ``generation`` and a task; the runner records the action and
wakes the agent (or the scheduler) after the commit. The agent does
the work and reports back (kumo.core.compute.reports); the scheduler places new servers
(kumo.controller.scheduler). The instance actions themselves, and what a request leaves
in them for later (a rescue's image, a backup's rotation, a pending snapshot or crash
dump), are kept by kumo.core.compute.instance_actions.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kumo.core.compute import (
    flavors,
    instance_actions,
    nics,
    quotas,
    states,
)
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

# How long a task may stay in flight before the controller calls it stuck.
TASK_DEADLINE = dt.timedelta(minutes=10)


def _ref_id(ref: Any, what: str) -> str:
    """flavorRef/imageRef may be an id or a URL ending in one."""
    if not isinstance(ref, str | int) or isinstance(ref, bool) or not str(ref).strip():
        raise BadRequest(f"Invalid {what}Ref provided.")
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


ref_id = _ref_id


def check_name(name: Any) -> str:
    """A server's or an image's name: 1 to 255 characters, no surrounding spaces."""
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest(
            "Invalid input for field/attribute name. A name of 1 to 255 "
            "characters without leading or trailing spaces is required."
        )
    if name != name.strip():
        raise BadRequest(
            "Invalid input for field/attribute name: leading or trailing whitespace is not allowed."
        )
    return name


def check_metadata(value: Any) -> dict[str, str]:
    """A server's metadata as given: an object of strings, keys of 1 to 255 characters and
    values of at most 255 (its size against the project's limit: ``metadata_within``)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute metadata: an object expected.")
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= 255:
            raise BadRequest("Invalid metadata key: 1 to 255 characters expected.")
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(
                f"Invalid metadata value for {key}: a string of at most 255 characters expected."
            )
    return dict(value)


def metadata_within(meta: dict[str, str], limit: int) -> dict[str, str]:
    if len(meta) > limit:
        raise Forbidden(
            f"Quota exceeded for metadata_items: Requested {len(meta)}, but the limit is {limit}"
        )
    return meta


def _metadata(value: Any, limit: int) -> dict[str, str]:
    return metadata_within(check_metadata(value), limit)


def _printable(char: str) -> bool:
    """Nova's description characters: no control/format/unassigned characters (category
    C*) and no line or paragraph separators; letters, marks, digits, punctuation, symbols
    and spaces are fine."""
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def check_description(value: Any) -> str | None:
    """A server description (2.19+): a string of at most 255 printable characters, or null
    (no description)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(
            f"Invalid input for field/attribute description. Value: {value}. "
            f"{value!r} is not of type 'string', 'null'"
        )
    if len(value) > 255:
        raise BadRequest(
            f"Invalid input for field/attribute description. Value: {value}. {value!r} is too long"
        )
    if not all(_printable(c) for c in value):
        raise BadRequest(
            f"Invalid input for field/attribute description. Value: {value!r}. "
            "Only printable characters are allowed"
        )
    return value


def check_image(session: Session, ctx: Context, ref: Any) -> tuple[str | None, int, int]:
    """The image id, its min_disk and min_ram (a server without one boots from a volume:
    block_device_mapping_v2)."""
    if ref in (None, ""):
        raise BadRequest(
            "Block Device Mapping is Invalid: Boot sequence for the instance and image/block "
            "device mapping combination is not valid. Give an imageRef, or a volume with "
            "boot_index 0 in block_device_mapping_v2."
        )
    image_id = _ref_id(ref, "image")
    from kumo.core.images.images import get_image  # images are optional for compute tests

    try:
        image = get_image(session, ctx, image_id, tags=False)
    except NotFound:
        raise BadRequest(f"Image {image_id} could not be found.") from None
    if image.status != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    return image.id, int(image.min_disk or 0), int(image.min_ram or 0)


def flavor_snapshot(flavor: m.Flavor) -> dict[str, Any]:
    """What the server keeps of its flavor: later edits to the flavor do not change it."""
    return {
        "id": flavor.id,
        "name": flavor.name,
        "vcpus": flavor.vcpus,
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "ephemeral": flavor.ephemeral_gb,
        "swap": flavor.swap_mb,
        "extra_specs": dict(flavor.extra_specs or {}),
    }


def access_ip(value: Any, version: int) -> str:
    """accessIPv4/accessIPv6 validated and in canonical form, as Nova stores them."""
    if value in (None, ""):
        return ""
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        raise BadRequest(
            f"Invalid input for field/attribute accessIPv{version}. Value: "
            f"{value}. '{value}' is not a 'ipv{version}'"
        ) from None
    if address.version != version:
        raise BadRequest(
            f"Invalid input for field/attribute accessIPv{version}. Value: "
            f"{value}. '{value}' is not a 'ipv{version}'"
        )
    return str(address)


def get(
    session: Session,
    ctx: Context,
    server_id: str,
    include_deleted: bool = False,
) -> m.Instance:
    """A server the caller may see (own project, or any for an admin); 404 otherwise."""
    instance = session.get(m.Instance, server_id)
    if (
        instance is None
        or (instance.deleted and not include_deleted)
        or not (ctx.is_admin or instance.project_id == ctx.project_id)
    ):
        raise NotFound(f"Instance {server_id} could not be found.")
    return instance


@dataclass(frozen=True)
class Update:
    """A server's update as given (ABSENT: not given; the API refused a description
    before 2.19); the values are checked here, after the server's lock."""

    name: Any
    description: Any
    access_ipv4: Any
    access_ipv6: Any


def update(session: Session, ctx: Context, server_id: str, req: Update) -> m.Instance:
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    if req.name is not ABSENT:
        instance.name = check_name(req.name)
    if req.description is not ABSENT:
        instance.description = check_description(req.description)
    if req.access_ipv4 is not ABSENT:
        instance.access_ipv4 = access_ip(req.access_ipv4, 4)
    if req.access_ipv6 is not ABSENT:
        instance.access_ipv6 = access_ip(req.access_ipv6, 6)
    return instance


def _check_not_locked(ctx: Context, instance: m.Instance) -> None:
    if instance.locked and not ctx.is_admin:
        raise Conflict(f"Instance {instance.id} is locked")


check_not_locked = _check_not_locked


def delete(session: Session, ctx: Context, server_id: str, force: bool = False) -> m.Instance:
    """Ask for deletion. A server no host owns is deleted at once; otherwise its agent
    destroys the guest and reports, and the row is soft-deleted then."""
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    if instance.task_state in states.UPLOAD_TASKS:
        snapshot = instance_actions.pending_snapshot(session, instance)
        if snapshot is not None:  # never a half-taken snapshot left behind
            instance_actions.drop_snapshot(session, snapshot)
    from kumo.core.compute import migrations  # imports this module

    migrations.on_server_delete(session, instance)
    if instance.host_id is None:
        finish_delete(session, instance)
        return instance
    _ask(instance, "deleted", "deleting")
    return instance


def finish_delete(session: Session, instance: m.Instance) -> None:
    """The guest is gone: release the allocation and soft-delete the row (kept for usage)."""
    allocation = session.get(m.Allocation, instance.id)
    if allocation is not None:
        session.delete(allocation)
    nics.unplug_on_delete(session, instance)
    drop_shelved_image(session, instance)
    from kumo.core.volume import attachments, volumes  # block storage imports compute

    for volume in attachments.on_server_deleted(session, instance):
        volumes.delete_with_server(volume)
    from kumo.core.compute import consoles  # imports this module

    consoles.forget(session, instance.id)  # its console endpoints and tokens go with it
    now = utcnow()
    instance.vm_state = "deleted"
    instance.task_state = None
    instance.power_state = states.NOSTATE
    instance.deleted = True
    instance.deleted_at = now
    instance.terminated_at = now
    instance.task_deadline = None
    instance_actions.end_action(session, instance.id, "delete", None)


def drop_shelved_image(session: Session, instance: m.Instance) -> str | None:
    """A shelved server's snapshot is deleted with the server, or once it runs again (Nova
    does the same). Returns the image id (its data is the API's to remove: the image
    store lives there), or None when there is none. The server keeps the reference."""
    image = session.get(m.Image, instance.shelved_image_id or "")
    if image is None or image.status == "deleted":
        return None
    image.status = "deleted"
    image.deleted_at = image.updated_at = utcnow()
    return image.id


# Actions: which states allow them and what they ask for ---------------------------------


@dataclass(frozen=True)
class Action:
    """A power action: the instance action's name (its allowed states are in
    states.SERVER_TRANSITIONS under that name) and what it asks the agent for."""

    name: str
    desired: str | None
    task: str


ACTIONS: dict[str, Action] = {
    "os-start": Action("start", "active", "powering-on"),
    "os-stop": Action("stop", "stopped", "powering-off"),
    "pause": Action("pause", "paused", "pausing"),
    "unpause": Action("unpause", "active", "unpausing"),
    "suspend": Action("suspend", "suspended", "suspending"),
    "resume": Action("resume", "active", "resuming"),
}


def act(session: Session, ctx: Context, server_id: str, action_key: str) -> m.Instance:
    action = ACTIONS[action_key]
    instance = get(session, ctx, server_id)
    _ask(instance, action.desired, action.task)
    return instance


def reboot(session: Session, ctx: Context, server_id: str, kind: str) -> m.Instance:
    """``kind``: SOFT or HARD (the API checked it)."""
    instance = get(session, ctx, server_id)
    instance.reboot_kind = kind.lower()
    _ask(instance, "active", "rebooting_hard" if kind == "HARD" else "rebooting")
    return instance


def _ask(instance: m.Instance, desired: str | None, task: str) -> None:
    """A new request for the server's agent (or the scheduler): a task with a deadline."""
    if desired is not None:
        instance.desired_state = desired
    instance.task_state = task
    instance.generation += 1
    instance.task_deadline = utcnow() + TASK_DEADLINE


ask = _ask


def set_lock(
    session: Session, ctx: Context, server_id: str, locked: bool, reason: str | None = None
) -> m.Instance:
    instance = get(session, ctx, server_id)
    if not locked and instance.locked and instance.locked_by == "admin" and not ctx.is_admin:
        raise Conflict(f"Instance {server_id} was locked by an administrator.")
    instance.locked = locked
    instance.locked_reason = reason if locked else None
    instance.locked_by = ("admin" if ctx.is_admin else "owner") if locked else None
    return instance


class _Absent:
    """An argument not given: the server keeps what it has."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()


@dataclass(frozen=True)
class Rebuild:
    """A rebuild's arguments as given (ABSENT: not given). Their values are checked here,
    after the server's state, in Nova's order."""

    server_id: str
    image_ref: Any
    name: Any = ABSENT
    metadata: Any = ABSENT
    access_ipv4: Any = ABSENT
    access_ipv6: Any = ABSENT
    description: Any = ABSENT
    admin_pass: Any = None


def rebuild(session: Session, ctx: Context, req: Rebuild) -> tuple[m.Instance, str]:
    """Re-create the server's disk from an image, keeping its id, name and host. A stopped
    server stays stopped; the agent destroys and re-spawns the guest. (The API refused a
    description before 2.19.)"""
    instance = get(session, ctx, req.server_id)
    image_id, min_disk, min_ram = check_image(session, ctx, req.image_ref)
    if instance.flavor.get("disk") and min_disk > instance.flavor["disk"]:
        raise BadRequest("Flavor's disk is too small for requested image.")
    if min_ram > int(instance.flavor.get("ram", 0)):
        raise BadRequest("Flavor's memory is too small for requested image.")
    if req.name is not ABSENT:
        instance.name = check_name(req.name)
    if req.metadata is not ABSENT:
        instance.meta = _metadata(
            req.metadata, quotas.limits(session, instance.project_id)["metadata_items"]
        )
    if req.access_ipv4 is not ABSENT:
        instance.access_ipv4 = access_ip(req.access_ipv4, 4)
    if req.access_ipv6 is not ABSENT:
        instance.access_ipv6 = access_ip(req.access_ipv6, 6)
    if req.description is not ABSENT:
        instance.description = check_description(req.description)
    admin_pass = req.admin_pass or secrets.token_urlsafe(9)
    instance.image_id = image_id
    drop_shelved_image(session, instance)  # a failed unshelve: the new image replaces it
    instance.shelved_image_id = None
    if instance.vm_state == "error":
        instance.desired_state = "active"
    _ask(instance, None, "rebuilding")
    return instance, admin_pass


def _need(flavor: dict[str, Any]) -> tuple[int, int, int]:
    """What a flavor claims on a host: vCPUs, MiB of RAM, GiB of disk (swap rounded up)."""
    disk = (
        int(flavor.get("disk", 0))
        + int(flavor.get("ephemeral", 0))
        + (int(flavor.get("swap", 0)) + 1023) // 1024
    )
    return int(flavor["vcpus"]), int(flavor["ram"]), disk


flavor_need = _need


def resize(
    session: Session,
    ctx: Context,
    server_id: str,
    flavor_ref: Any,
    free_on_host: tuple[float, float, float] | None,
) -> m.Instance:
    """Resize in place on the server's host: the allocation grows to hold both sizes until
    the user confirms (keep the new) or reverts (back to the old). ``flavor_ref`` is the
    flavorRef given (an id or a URL), checked after the server's state, as Nova does.

    ``free_on_host`` is the host's free capacity (from the scheduler's view), computed by the
    caller under the claims lock."""
    instance = get(session, ctx, server_id)
    flavor_id = _ref_id(flavor_ref, "flavor")
    try:
        flavor = flavors.get(session, flavor_id, ctx.project_id, ctx.is_admin)
    except NotFound:
        raise BadRequest(f"Flavor {flavor_id} could not be found.") from None
    if flavor.id == instance.flavor_id:
        raise BadRequest("When resizing, instances must change flavor!")
    if flavor.root_gb and flavor.root_gb < int(instance.flavor.get("disk", 0)):
        raise BadRequest("Resize to a flavor with a smaller root disk is not possible.")
    new = flavor_snapshot(flavor)
    old_need, new_need = _need(instance.flavor), _need(new)
    grow = [max(0, n - o) for n, o in zip(new_need, old_need, strict=True)]
    if free_on_host is not None and any(g > f for g, f in zip(grow, free_on_host, strict=True)):
        raise BadRequest(
            "No valid host was found. The server's host has no room for the new flavor."
        )
    quotas.check_growth(
        session, instance.project_id, cores=new_need[0] - old_need[0], ram=new_need[1] - old_need[1]
    )
    allocation = session.get(m.Allocation, instance.id)
    if allocation is not None:
        allocation.vcpus, allocation.memory_mb, allocation.disk_gb = (
            max(n, o) for n, o in zip(new_need, old_need, strict=True)
        )
    instance.old_flavor = instance.flavor
    instance.flavor = new
    instance.flavor_id = flavor.id
    _ask(instance, None, "resize_migrating")
    return instance


def confirm_resize(session: Session, ctx: Context, server_id: str) -> m.Instance:
    instance = get(session, ctx, server_id)
    from kumo.core.compute import moves  # imports this module

    cold = moves.waiting_cold(session, instance)
    if cold is not None:  # moved to another host: the source's share goes
        moves.confirm(session, instance, cold)
    allocation = session.get(m.Allocation, instance.id)
    if allocation is not None:
        allocation.vcpus, allocation.memory_mb, allocation.disk_gb = _need(instance.flavor)
    instance.old_flavor = None
    instance.vm_state = states.VM_STATE_FOR_DESIRED[instance.desired_state]
    return instance


def revert_resize(session: Session, ctx: Context, server_id: str) -> m.Instance:
    instance = get(session, ctx, server_id)
    if not instance.old_flavor:
        raise Conflict(f"Instance {server_id} is not resized and waiting for confirmation.")
    from kumo.core.compute import moves  # imports this module

    cold = moves.waiting_cold(session, instance)
    if cold is not None:  # back to the source host, where the guest was kept
        moves.revert(session, instance, cold)
        return instance
    instance.flavor = instance.old_flavor
    instance.flavor_id = str(instance.old_flavor["id"])
    instance.old_flavor = None
    allocation = session.get(m.Allocation, instance.id)
    if allocation is not None:
        allocation.vcpus, allocation.memory_mb, allocation.disk_gb = _need(instance.flavor)
    _ask(instance, None, "resize_reverting")
    return instance


# Snapshots (createImage) ----------------------------------------------------------------

# What a snapshot keeps of its base image so that it boots the same way (a kernel/ramdisk
# image boots by direct kernel boot: without these the snapshot of kumo-tiny would not).
INHERITED_IMAGE_PROPERTIES = (
    "kernel_id",
    "ramdisk_id",
    "os_command_line",
    "os_distro",
    "os_version",
    "os_type",
    "architecture",
    "hw_disk_bus",
    "hw_vif_model",
)


def snapshot_image(
    session: Session,
    ctx: Context,
    instance: m.Instance,
    name: str | None,
    meta: dict[str, str],
    image_type: str,
    request_props: dict[str, str] | None = None,
) -> m.Image:
    """A queued image, owned by the server's project, for a copy of its root disk: it keeps
    what its base image needs to boot the same way and names its server
    (``instance_uuid``), which is how the agent's upload finds it. Properties as Nova
    layers them: the base image's, then ``image_type``, ``user_id`` and
    ``base_image_ref``, then the user's metadata (an ``image_type`` of theirs wins), then
    ``request_props`` (createBackup's ``backup_type``); ``instance_uuid`` always last."""
    base = session.get(m.Image, instance.image_id) if instance.image_id else None
    properties: dict[str, Any] = {}
    if base is not None:
        base_props = base.properties or {}
        properties.update(
            {k: base_props[k] for k in INHERITED_IMAGE_PROPERTIES if base_props.get(k)}
        )
    from kumo.core.images import fields  # images are optional for compute tests

    for key in meta:
        if key in fields.BASE or key in fields.RESERVED or key in fields.READ_ONLY:
            raise BadRequest(f"Invalid metadata key {key}: an image attribute of that name exists.")
    properties.update(
        {
            "image_type": image_type,
            "base_image_ref": instance.image_id or "",
            "user_id": ctx.user_id,
        }
    )
    properties.update(meta)
    properties.update(request_props or {})
    properties["instance_uuid"] = instance.id
    now = utcnow()
    image = m.Image(
        id=str(uuid.uuid4()),
        name=name,
        owner=instance.project_id,
        status="queued",
        visibility="private",
        protected=False,
        os_hidden=False,
        disk_format="qcow2",
        container_format="bare",
        min_disk=max(int(instance.flavor.get("disk") or 0), int(base.min_disk or 0) if base else 0),
        min_ram=int(base.min_ram or 0) if base is not None else 0,
        properties=properties,
        locations=[],
        created_at=now,
        updated_at=now,
    )
    image.tag_rows = []
    session.add(image)
    return image


def _snapshot(
    session: Session,
    ctx: Context,
    server_id: str,
    name: str,
    metadata: Any,
    action: str,
    image_type: str,
    request_props: dict[str, str] | None = None,
) -> tuple[m.Instance, m.Image]:
    """The image a snapshot of the server's root disk will fill, queued, owned by the
    server's project, and the server's task started (shared by createImage and
    createBackup, which differ only in the properties they add). ``metadata`` is checked
    here, against the project's limit."""
    instance = get(session, ctx, server_id)
    limit = quotas.limits(session, instance.project_id)["metadata_items"]
    meta = _metadata(metadata, limit)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    image = snapshot_image(session, ctx, instance, name, meta, image_type, request_props)
    _ask(instance, None, "image_snapshot")
    session.flush()
    return instance, image


def create_image(
    session: Session, ctx: Context, server_id: str, name: str, metadata: Any
) -> tuple[m.Instance, m.Image]:
    """Snapshot the server's root disk to a new image, owned by the server's project.

    The image exists at once (queued, then saving while the agent uploads); the server's
    task goes image_snapshot -> image_pending_upload -> image_uploading -> None."""
    return _snapshot(session, ctx, server_id, name, metadata, "createImage", "snapshot")


def create_backup(
    session: Session,
    ctx: Context,
    server_id: str,
    name: str,
    metadata: Any,
    backup_type: str,
) -> tuple[m.Instance, m.Image]:
    """A snapshot kept as a backup (``image_type=backup``, ``backup_type``). Its rotation
    (once the backup has its data, only the newest ``rotation`` backups of this server and
    type remain: instance_actions.rotate_backups) waits in the createBackup instance
    action's message until then, the record of the request, as the image row is."""
    return _snapshot(
        session,
        ctx,
        server_id,
        name,
        metadata,
        "createBackup",
        "backup",
        {"backup_type": backup_type},
    )


# Rescue ---------------------------------------------------------------------------------


def rescue(
    session: Session, ctx: Context, server_id: str, password: str | None, ref: Any
) -> tuple[m.Instance, str, str]:
    """Boot the server from a rescue image (default: its own image) with its root disk
    attached as a second disk. Where the rescue image is recorded: the ``rescue`` instance
    action's message (the third value returned, for the lifecycle to record), which the
    agent's work item reads back (instance_actions.rescue_image_id)."""
    instance = get(session, ctx, server_id)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    image_id = check_image(session, ctx, ref)[0] if ref not in (None, "") else instance.image_id
    if image_id is None:
        raise BadRequest("Cannot rescue a server booted from a volume without rescue_image_ref.")
    _ask(instance, "rescued", "rescuing")
    return (
        instance,
        password or secrets.token_urlsafe(9),
        instance_actions.RESCUE_IMAGE_PREFIX + image_id,
    )


def unrescue(session: Session, ctx: Context, server_id: str) -> m.Instance:
    instance = get(session, ctx, server_id)
    _ask(instance, "active", "unrescuing")
    return instance


# Crash dump (2.17) ----------------------------------------------------------------------


def trigger_crash_dump(session: Session, ctx: Context, server_id: str) -> m.Instance:
    """Ask the server's agent to send its guest an NMI. As in Nova there is no task state:
    the request is the unfinished ``trigger_crash_dump`` instance action, carried to the
    agent with a new generation and finished when the agent reports on it."""
    instance = get(session, ctx, server_id)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    host = session.get(m.Host, instance.host_id)
    if host is None or not ((host.capabilities or {}).get("hypervisor") or {}).get("nmi"):
        # An agent from before inject_nmi (or a driver without it) would never send one.
        raise BadRequest("Triggering crash dump is not supported")
    instance.generation += 1
    return instance

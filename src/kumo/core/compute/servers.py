"""Servers: create, read, update and delete; what each action asks of the agent.

The actions are the execute steps of lifecycle operations (kumo.core.operations, declared
in kumo.core.compute.server_operations): the runner checks nothing here but the request's
type; these functions load the server (optimistic ``version``), check its state against
states.SERVER_TRANSITIONS, and write the desired state with a new ``generation`` and a
task; the runner records the action and wakes the agent after the commit. The agent does
the work and reports back (kumo.core.compute.reports); the scheduler places new servers
(kumo.controller.scheduler).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import ipaddress
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, defer

from kumo.core.compute import (
    aggregates,
    block_devices,
    flavors,
    keypairs,
    nics,
    quotas,
    server_groups,
    states,
)
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.policy import Context, enforce
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow

MAX_USER_DATA = 65535
# How long a task may stay in flight before the controller calls it stuck.
TASK_DEADLINE = dt.timedelta(minutes=10)


def _ref_id(ref: Any, what: str) -> str:
    """flavorRef/imageRef may be an id or a URL ending in one."""
    if not isinstance(ref, str | int) or isinstance(ref, bool) or not str(ref).strip():
        raise BadRequest(f"Invalid {what}Ref provided.")
    return str(ref).rstrip("/").rsplit("/", 1)[-1]


def _name(body: dict[str, Any], required: bool = True) -> str | None:
    name = body.get("name")
    if name is None and not required:
        return None
    return check_name(name)


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


def _metadata(value: Any, limit: int) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("Invalid input for field/attribute metadata: an object expected.")
    if len(value) > limit:
        raise Forbidden(
            f"Quota exceeded for metadata_items: Requested {len(value)}, but the limit is {limit}"
        )
    for key, item in value.items():
        if not isinstance(key, str) or not 0 < len(key) <= 255:
            raise BadRequest("Invalid metadata key: 1 to 255 characters expected.")
        if not isinstance(item, str) or len(item) > 255:
            raise BadRequest(
                f"Invalid metadata value for {key}: a string of at most 255 characters expected."
            )
    return dict(value)


def _user_data(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_USER_DATA:
        raise BadRequest(
            "Invalid input for field/attribute user_data: base64 text of at "
            f"most {MAX_USER_DATA} characters expected."
        )
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("User data needs to be valid base 64.") from None
    return value


def _printable(char: str) -> bool:
    """Nova's description characters: no control/format/unassigned characters (category
    C*) and no line or paragraph separators; letters, marks, digits, punctuation, symbols
    and spaces are fine."""
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _description(body: dict[str, Any]) -> str | None:
    return check_description(body.get("description"))


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


def _no_description_before_2_19(body: dict[str, Any], version: APIVersion) -> None:
    if "description" in body and not version.at_least("2.19"):
        raise BadRequest(
            "Invalid input for field/attribute server. Additional properties are not "
            "allowed ('description' was unexpected); it needs microversion 2.19"
        )


no_description_before_2_19 = _no_description_before_2_19


def _count(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, float) or (isinstance(value, str) and not value.strip().isdigit()):
        raise BadRequest(f"Invalid input for field/attribute {key}. Value: {value}.")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for field/attribute {key}.") from None
    if isinstance(value, bool) or number < 1:
        raise BadRequest(f"Invalid input for field/attribute {key}: must be >= 1.")
    return number


def _image(session: Session, ctx: Context, ref: Any) -> tuple[str | None, int, int]:
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


@dataclass(frozen=True)
class Created:
    instances: list[m.Instance]
    admin_pass: str
    reservation_id: str
    # Hosts of the volumes its block device mappings made: their agents have work.
    new_volume_hosts: set[str] = field(default_factory=set)


def create(
    session: Session,
    ctx: Context,
    body: dict[str, Any],
    version: APIVersion,
    group_id: str | None = None,
    volume_placement: Any = None,
    force_config_drive: bool = False,
) -> Created:
    """``group_id``: the server group named by the ``group`` scheduler hint, if any;
    ``volume_placement`` (kumo.core.volume.volumes.Placement): how new volumes of its block
    device mappings are placed (defaults when None); ``force_config_drive`` (the [compute]
    setting): every server gets a config drive, and shows ``config_drive`` true as Nova's
    do, so the disk names its volumes get leave the config drive's (vdb) out."""
    name = _name(body)
    assert name is not None
    if ctx.project_id is None:
        raise Forbidden("Servers are created with a project-scoped token.")
    flavor_id = _ref_id(body.get("flavorRef"), "flavor")
    try:
        flavor = flavors.get(session, flavor_id, ctx.project_id, ctx.is_admin)
    except NotFound:
        raise BadRequest(f"Flavor {flavor_id} could not be found.") from None
    if flavor.disabled:
        raise BadRequest(f"Flavor {flavor_id} is disabled.")
    mappings = block_devices.parse(body)
    from kumo.core.volume.volumes import Placement  # block storage imports compute

    prepared = block_devices.prepare(session, ctx, mappings, volume_placement or Placement())
    root_volume = block_devices.boot_volume(prepared)
    if root_volume is not None and not body.get("imageRef"):
        image_id, min_disk, min_ram = (
            None,
            0,
            int((root_volume.image_meta or {}).get("min_ram") or 0),
        )
    else:
        image_id, min_disk, min_ram = _image(
            session, ctx, body.get("imageRef") or mappings.image_id
        )
    if flavor.root_gb and min_disk > flavor.root_gb:
        raise BadRequest(
            f"Flavor's disk is too small for requested image. Flavor disk is "
            f"{flavor.root_gb} GiB, image needs {min_disk} GiB."
        )
    if min_ram > flavor.memory_mb:
        raise BadRequest("Flavor's memory is too small for requested image.")
    requested_nics = nics.resolve(session, ctx, nics.parse_requested(body.get("networks"), version))
    groups = nics.security_group_ids(session, ctx, body.get("security_groups"))
    limits = quotas.limits(session, ctx.project_id)
    meta = _metadata(body.get("metadata"), limits["metadata_items"])
    user_data = _user_data(body.get("user_data"))
    key_name = body.get("key_name")
    key_data = None
    if key_name is not None:
        try:
            key_data = keypairs.get(session, ctx.user_id, str(key_name)).public_key
        except NotFound:
            raise BadRequest("Invalid key_name provided.") from None
    config_drive = body.get("config_drive", False)
    if config_drive in ("True", "true", True, "1", 1):
        config_drive = True
    elif config_drive in ("", "False", "false", False, None, "0", 0):
        config_drive = False
    else:
        raise BadRequest("Invalid input for field/attribute config_drive.")
    config_drive = config_drive or force_config_drive
    zone, forced_host_id = requested_zone(session, ctx, body.get("availability_zone"))
    # Before 2.19 Nova stores the name as the description (and shows it from 2.19 on).
    description = _description(body) if version.at_least("2.19") else name
    _no_description_before_2_19(body, version)
    ipv4 = access_ip(body.get("accessIPv4"), 4)
    ipv6 = access_ip(body.get("accessIPv6"), 6)
    min_count = _count(body, "min_count", 1)
    max_count = _count(body, "max_count", min_count)
    if min_count > max_count:
        raise BadRequest("min_count must be <= max_count.")
    admin_pass = body.get("adminPass") or secrets.token_urlsafe(9)

    # Claims: quota is checked under the lock, then the rows are written, in one transaction.
    # A project unlimited in servers, cores and RAM has nothing to check, and its creates
    # need not queue one behind the other on its row.
    if not quotas.instances_unlimited(limits):
        lock_for_claims(session, project_id=ctx.project_id)
    count = max_count
    try:
        quotas.check_instances(
            session, ctx.project_id, count, flavor.vcpus, flavor.memory_mb, limits
        )
    except Forbidden:
        if min_count == max_count:
            raise
        count = min_count
        quotas.check_instances(
            session, ctx.project_id, count, flavor.vcpus, flavor.memory_mb, limits
        )
    if count > 1 and any(nic.port_id for nic in requested_nics):
        raise BadRequest("Unable to launch multiple instances with a single configured port ID.")
    if count > 1 and mappings.volumes:
        raise BadRequest("Unable to launch multiple instances with the same volumes mapped.")
    if root_volume is not None and forced_host_id is None and image_id is None:
        from kumo.core.volume import attachments  # block storage imports compute

        if root_volume.backend not in attachments.SHARED_BACKENDS:
            forced_host_id = root_volume.host_id  # its data is on that host's disk
    reservation = "r-" + secrets.token_hex(4)
    snapshot = flavor_snapshot(flavor)
    created = []
    for index in range(count):
        server_name = name if count == 1 else f"{name}-{index + 1}"
        instance = m.Instance(
            id=str(uuid.uuid4()),
            name=server_name,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            flavor_id=flavor.id,
            flavor=snapshot,
            image_id=image_id,
            key_name=key_name,
            key_data=key_data,
            user_data=user_data,
            meta=meta,
            config_drive=config_drive,
            availability_zone=zone,
            requested_host_id=forced_host_id,
            description=description,
            hostname=_hostname(server_name),
            access_ipv4=ipv4,
            access_ipv6=ipv6,
            reservation_id=reservation,
            launch_index=index,
            vm_state="building",
            task_state="scheduling",
            desired_state="active",
            task_deadline=utcnow() + TASK_DEADLINE,
            tags=[],
        )
        session.add(instance)
        nics.plug_on_create(session, ctx, instance, requested_nics, groups)
        block_devices.attach_on_create(session, instance, prepared)
        record_action(session, ctx, instance.id, "create")
        created.append(instance)
    if group_id is not None:
        server_groups.join(session, ctx, group_id, created)
    session.flush()
    new_volume_hosts = {
        volume.host_id
        for _, volume in prepared
        if volume.status == "creating" and volume.host_id is not None
    }
    return Created(created, admin_pass, reservation, new_volume_hosts)


def requested_zone(session: Session, ctx: Context, value: Any) -> tuple[str, str | None]:
    """The zone a create asks for ("" for any) and the id of the host an admin forces with
    ``az:host`` (or ``az:host:node``, ``az::node``; a kumo node is its host).

    The zone must be one of the available zones, as Nova checks at the API; an unknown
    forced host is refused here rather than failing later at the scheduler."""
    if value in (None, ""):
        return "", None
    if not isinstance(value, str) or len(value) > 255:
        raise BadRequest(
            f"Invalid input for field/attribute availability_zone. Value: {value}. "
            "A string of 1 to 255 characters is required."
        )
    zone, _, rest = value.partition(":")
    host, _, node = rest.partition(":")
    host = host or node
    forced = None
    if host:
        enforce(ctx, "compute:servers:create:forced_host")
        row = session.scalars(select(m.Host).where(m.Host.name == host)).first()
        if row is None:
            raise BadRequest(f"Compute host {host} could not be found.")
        forced = row.id
    if not zone and forced is None:
        return "", None
    if zone and not aggregates.zones(session).get(zone, False):
        raise BadRequest("The requested availability zone is not available")
    return zone, forced


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


def _hostname(name: str) -> str:
    """A DNS label from the server name, as Nova derives it."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-.")[:63]
    return label or "server"


def record_action(
    session: Session, ctx: Context, instance_id: str, action: str, message: str | None = None
) -> m.InstanceAction:
    """The instance action under the id of the request that asked for it (what a client
    got back as X-OpenStack-Request-ID and looks the action up by, as in Nova); work the
    cloud does on its own (outside a request) gets an id of its own."""
    row = m.InstanceAction(
        instance_id=instance_id,
        action=action,
        request_id=ctx.request_id or "req-" + str(uuid.uuid4()),
        user_id=ctx.user_id,
        project_id=ctx.project_id or "",
        message=message,
    )
    session.add(row)
    return row


def end_action(session: Session, instance_id: str, action: str, message: str | None) -> None:
    row = session.scalars(
        select(m.InstanceAction)
        .where(m.InstanceAction.instance_id == instance_id, m.InstanceAction.action == action)
        .order_by(m.InstanceAction.id.desc())
        .limit(1)
    ).first()
    if row is not None and row.finish_time is None:
        row.finish_time = utcnow()
        if message:
            row.message = message[:4000]


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


@dataclass
class ListFilters:
    all_projects: bool = False
    project_id: str | None = None
    name: str | None = None
    # Each ``status`` asked for (Nova takes the parameter repeated and ignores the ones it
    # does not know while one is known); ``reject_unknown_status``: none known is a 400
    # from 2.38, an empty list before.
    statuses: tuple[str, ...] = ()
    reject_unknown_status: bool = True
    host: str | None = None
    image: str | None = None
    flavor: str | None = None
    changes_since: dt.datetime | None = None
    deleted: bool = False
    ip: str | None = None
    ip6: str | None = None
    tags: list[str] | None = None
    limit: int | None = None
    marker: str | None = None
    sort_key: str = "created_at"
    sort_dir: str = "desc"
    # Leave out the columns a server view does not show (flavor snapshots, the public
    # key): a listing of 1,000 servers then decodes a third less JSON.
    lean: bool = False


_SORT_KEYS = {
    "created_at",
    "updated_at",
    "display_name",
    "name",
    "uuid",
    "id",
    "vm_state",
    "task_state",
    "power_state",
    "launched_at",
    "terminated_at",
    "host",
    "availability_zone",
    "key_name",
    "launch_index",
    "hostname",
    "project_id",
    "user_id",
}


# Sort keys whose column is never NULL: a keyset page after the marker is plain comparisons.
_NOT_NULL_SORT_KEYS = {"created_at", "name", "id", "project_id", "user_id", "vm_state"}


def list_servers(session: Session, ctx: Context, f: ListFilters) -> list[m.Instance]:
    query = select(m.Instance)
    if f.lean:
        query = query.options(
            defer(m.Instance.flavor), defer(m.Instance.old_flavor), defer(m.Instance.key_data)
        )
    if not (ctx.is_admin and f.all_projects):
        query = query.where(m.Instance.project_id == ctx.project_id)
    elif f.project_id:
        query = query.where(m.Instance.project_id == f.project_id)
    if f.changes_since is not None:
        query = query.where(m.Instance.updated_at >= f.changes_since)
    elif not (ctx.is_admin and f.deleted):
        query = query.where(m.Instance.deleted.is_(False))
    wanted_statuses = {s.upper() for s in f.statuses} & states.ALL_STATUSES
    if f.statuses:
        if not wanted_statuses:
            if f.reject_unknown_status:
                raise BadRequest("Invalid status value")
            return []
        vm = [states.vm_states_for_status(wanted) for wanted in wanted_statuses]
        if all(vm):  # a status shown by a task (REBOOT, MIGRATING...) spans vm_states
            query = query.where(m.Instance.vm_state.in_([v for vms in vm for v in vms]))
    if f.image:
        query = query.where(m.Instance.image_id == f.image.rstrip("/").rsplit("/", 1)[-1])
    if f.flavor:
        query = query.where(m.Instance.flavor_id == f.flavor.rstrip("/").rsplit("/", 1)[-1])
    if f.host and ctx.is_admin:
        hosts = select(m.Host.id).where(m.Host.name == f.host)
        query = query.where(m.Instance.host_id.in_(hosts))
    for ip_pattern, family in ((f.ip, 4), (f.ip6, 6)):
        if ip_pattern:
            matching = nics.servers_with_ip(session, ip_pattern, family)
            query = query.where(m.Instance.id.in_(matching))
    key = {"display_name": "name", "uuid": "id", "host": "host_id"}.get(f.sort_key, f.sort_key)
    if f.sort_key not in _SORT_KEYS:
        raise BadRequest(f"Invalid sort_key: {f.sort_key}")
    if f.sort_dir not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort_dir: {f.sort_dir}")
    column = getattr(m.Instance, key)
    desc = f.sort_dir == "desc"
    order = column.desc() if desc else column.asc()
    tiebreak = m.Instance.id.desc() if desc else m.Instance.id.asc()
    query = query.order_by(order, tiebreak)
    if not (f.name or f.statuses or f.tags) and key in _NOT_NULL_SORT_KEYS:
        # Every filter is in SQL: so is the page (keyset after the marker, then LIMIT),
        # and a page of 10 costs 10 rows, not the whole list.
        if f.marker is not None:
            after = session.execute(
                query.with_only_columns(column, m.Instance.id).where(m.Instance.id == f.marker)
            ).first()
            if after is None:
                raise BadRequest(f"marker [{f.marker}] not found")
            beyond = (column < after[0]) if desc else (column > after[0])
            past_id = (m.Instance.id < after[1]) if desc else (m.Instance.id > after[1])
            query = query.where(or_(beyond, and_(column == after[0], past_id)))
        if f.limit is not None:
            query = query.limit(f.limit)
        return list(session.scalars(query))
    rows = list(session.scalars(query))
    if f.name:
        try:
            pattern = re.compile(f.name)
        except re.error:
            raise BadRequest(f"Invalid name filter: {f.name}") from None
        rows = [r for r in rows if pattern.search(r.name)]
    if f.statuses:
        # The SQL filter narrowed by vm_state; tasks (REBOOT, RESIZE...) refine the status.
        rows = [r for r in rows if states.status(r.vm_state, r.task_state) in wanted_statuses]
    if f.tags:
        wanted_tags = set(f.tags)
        rows = [r for r in rows if wanted_tags <= set(r.tags or [])]
    if f.marker is not None:
        ids = [r.id for r in rows]
        if f.marker not in ids:
            raise BadRequest(f"marker [{f.marker}] not found")
        rows = rows[ids.index(f.marker) + 1 :]
    return rows[: f.limit] if f.limit is not None else rows


def update(
    session: Session, ctx: Context, server_id: str, body: dict[str, Any], version: APIVersion
) -> m.Instance:
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    allowed = {"name", "accessIPv4", "accessIPv6"} | (
        {"description"} if version.at_least("2.19") else set()
    )
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(
            f"Invalid input: additional properties are not allowed "
            f"({', '.join(sorted(unknown))} unexpected)."
        )
    if "name" in body:
        instance.name = _name(body) or instance.name
    if "description" in body:
        instance.description = _description(body)
    if "accessIPv4" in body:
        instance.access_ipv4 = access_ip(body["accessIPv4"], 4)
    if "accessIPv6" in body:
        instance.access_ipv6 = access_ip(body["accessIPv6"], 6)
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
        snapshot = pending_snapshot(session, instance)
        if snapshot is not None:  # never a half-taken snapshot left behind
            drop_snapshot(session, snapshot)
    from kumo.core.compute import migrations  # imports this module

    migrations.on_server_delete(session, instance)
    if instance.host_id is None:
        finish_delete(session, instance)
        return instance
    instance.desired_state = "deleted"
    instance.task_state = "deleting"
    instance.generation += 1
    instance.task_deadline = utcnow() + TASK_DEADLINE
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
    now = utcnow()
    instance.vm_state = "deleted"
    instance.task_state = None
    instance.power_state = states.NOSTATE
    instance.deleted = True
    instance.deleted_at = now
    instance.terminated_at = now
    instance.task_deadline = None
    end_action(session, instance.id, "delete", None)


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
    _check_not_locked(ctx, instance)
    states.check(action.name, instance)
    _ask(instance, action.desired, action.task)
    return instance


def reboot(session: Session, ctx: Context, server_id: str, kind: Any) -> m.Instance:
    if kind not in ("SOFT", "HARD"):
        raise BadRequest("Invalid input for field/attribute type: SOFT or HARD expected.")
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    states.check("reboot_hard" if kind == "HARD" else "reboot", instance, "reboot")
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
    _check_not_locked(ctx, instance)
    states.check("rebuild", instance)
    image_id, min_disk, min_ram = _image(session, ctx, req.image_ref)
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
    _check_not_locked(ctx, instance)
    states.check("resize", instance)
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
    states.check("confirmResize", instance)
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
    states.check("revertResize", instance)
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


# The instance actions whose request an image task carries out.
SNAPSHOT_ACTIONS = ("createImage", "createBackup")
ROTATION_PREFIX = "rotation="


def pending_snapshot(session: Session, instance: m.Instance) -> m.Image | None:
    """The image a running createImage, createBackup or shelve fills: the server's own
    image that has no data yet (queued or saving). The image row is the record of the
    request, linked to its server by the ``instance_uuid`` property (as Nova links a
    snapshot), which snapshot_image keeps; ``image_type`` is the user's to set."""
    candidates = session.scalars(
        select(m.Image)
        .where(m.Image.owner == instance.project_id, m.Image.status.in_(("queued", "saving")))
        .order_by(m.Image.created_at.desc())
    )
    for image in candidates:
        if (image.properties or {}).get("instance_uuid") == instance.id:
            return image
    return None


def drop_snapshot(session: Session, image: m.Image) -> None:
    """A snapshot that will never get its data: deleted, as Nova deletes a failed one."""
    image.status = "deleted"
    image.deleted_at = image.updated_at = utcnow()


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
    _check_not_locked(ctx, instance)
    limit = quotas.limits(session, instance.project_id)["metadata_items"]
    meta = _metadata(metadata, limit)
    states.check(action, instance)
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
    type remain: rotate_backups) waits in the createBackup instance action's message until
    then, the record of the request, as the image row is."""
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


def rotate_backups(session: Session, image: m.Image) -> list[str]:
    """After a backup got its data: delete this server's oldest backups of the same type
    beyond the rotation its request asked for (0 deletes them all, the new one too, as
    Nova does). The ids deleted, whose data the caller removes from the image store."""
    props = image.properties or {}
    server_id = str(props.get("instance_uuid") or "")
    if not props.get("backup_type") or not server_id:  # the request's, unlike image_type
        return []
    action = session.scalars(
        select(m.InstanceAction)
        .where(
            m.InstanceAction.instance_id == server_id,
            m.InstanceAction.action == "createBackup",
            m.InstanceAction.finish_time.is_(None),
        )
        .order_by(m.InstanceAction.id.desc())
        .limit(1)
    ).first()
    message = action.message if action is not None else None
    if message is None or not message.startswith(ROTATION_PREFIX):
        return []
    rotation = int(message[len(ROTATION_PREFIX) :])
    action.message = None  # type: ignore[union-attr]  # the request's parameter is used up
    backups = [
        row
        for row in session.scalars(
            select(m.Image)
            .where(m.Image.owner == image.owner, m.Image.status != "deleted")
            .order_by(m.Image.created_at.desc(), m.Image.id.desc())
        )
        if (row.properties or {}).get("instance_uuid") == server_id
        and (row.properties or {}).get("image_type") == "backup"
        and (row.properties or {}).get("backup_type") == props.get("backup_type")
    ]
    rotated = backups[rotation:]
    for row in rotated:
        drop_snapshot(session, row)
    session.flush()
    return [row.id for row in rotated]


# Rescue ---------------------------------------------------------------------------------

RESCUE_IMAGE_PREFIX = "Rescue image "


def rescue(
    session: Session, ctx: Context, server_id: str, password: str | None, ref: Any
) -> tuple[m.Instance, str, str]:
    """Boot the server from a rescue image (default: its own image) with its root disk
    attached as a second disk. Where the rescue image is recorded: the ``rescue`` instance
    action's message (the third value returned, for the lifecycle to record), which the
    agent's work item reads back (rescue_image_id)."""
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    states.check("rescue", instance)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    image_id = _image(session, ctx, ref)[0] if ref not in (None, "") else instance.image_id
    if image_id is None:
        raise BadRequest("Cannot rescue a server booted from a volume without rescue_image_ref.")
    _ask(instance, "rescued", "rescuing")
    return instance, password or secrets.token_urlsafe(9), RESCUE_IMAGE_PREFIX + image_id


def rescue_image_id(session: Session, instance: m.Instance) -> str | None:
    """The rescue image of the server's latest rescue request."""
    row = session.scalars(
        select(m.InstanceAction)
        .where(m.InstanceAction.instance_id == instance.id, m.InstanceAction.action == "rescue")
        .order_by(m.InstanceAction.id.desc())
        .limit(1)
    ).first()
    if row is not None and row.message and row.message.startswith(RESCUE_IMAGE_PREFIX):
        return row.message[len(RESCUE_IMAGE_PREFIX) :]
    return instance.image_id


def unrescue(session: Session, ctx: Context, server_id: str) -> m.Instance:
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    states.check("unrescue", instance)
    _ask(instance, "active", "unrescuing")
    return instance


# Crash dump (2.17) ----------------------------------------------------------------------

CRASH_DUMP = "trigger_crash_dump"


def trigger_crash_dump(session: Session, ctx: Context, server_id: str) -> m.Instance:
    """Ask the server's agent to send its guest an NMI. As in Nova there is no task state:
    the request is the unfinished ``trigger_crash_dump`` instance action, carried to the
    agent with a new generation and finished when the agent reports on it."""
    instance = get(session, ctx, server_id)
    _check_not_locked(ctx, instance)
    states.check(CRASH_DUMP, instance)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    host = session.get(m.Host, instance.host_id)
    if host is None or not ((host.capabilities or {}).get("hypervisor") or {}).get("nmi"):
        # An agent from before inject_nmi (or a driver without it) would never send one.
        raise BadRequest("Triggering crash dump is not supported")
    instance.generation += 1
    return instance


def pending_crash_dumps(session: Session, instance: m.Instance) -> list[m.InstanceAction]:
    """The server's crash dump requests its agent has not reported on yet."""
    return list(
        session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == instance.id,
                m.InstanceAction.action == CRASH_DUMP,
                m.InstanceAction.finish_time.is_(None),
            )
        )
    )

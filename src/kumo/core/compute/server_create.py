"""Creating servers: the create operation's execute step (server_operations.CREATE).

The API parses each microversion's body into a ``CreateRequest`` of values
(kumo.api.compute.server_bodies); what needs the database is checked here, in Nova's
order: the flavor, the block device mappings and the image, the networks and security
groups, the metadata limit, the key pair, the zone, then the quota under the project's
claims lock. The new servers wait in ``scheduling`` for the scheduler, which the runner
wakes after the commit with the ``create`` action of each recorded.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.compute import (
    aggregates,
    block_devices,
    flavors,
    keypairs,
    nics,
    quotas,
    server_groups,
    servers,
)
from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.policy import Context, enforce
from kumo.db import models as m
from kumo.db.locking import lock_for_claims
from kumo.db.types import utcnow


@dataclass(frozen=True)
class CreateRequest:
    """A server create as values: the API parses each microversion's body into it
    (kumo.api.compute.server_bodies). What needs the database (the flavor, the image, the
    networks, the security groups, the key pair, the zone, the quota) is checked here."""

    name: str
    flavor_id: str
    image_id: str | None = None  # imageRef; None: the mappings' image or a boot volume
    mappings: block_devices.Mappings = field(default_factory=block_devices.Mappings)
    networks: tuple[nics.RequestedNic, ...] | None = None  # None: pick the network
    security_groups: tuple[str, ...] | None = None  # names or ids; None: the default
    metadata: dict[str, str] = field(default_factory=dict)  # its size is checked here
    user_data: str | None = None
    key_name: str | None = None
    config_drive: bool = False
    availability_zone: str | None = None  # az, az:host, az:host:node, az::node
    description: str | None = None
    access_ipv4: str = ""
    access_ipv6: str = ""
    min_count: int = 1
    max_count: int = 1
    admin_pass: str | None = None  # None: one is made
    group_id: str | None = None  # the server group named by the ``group`` scheduler hint


@dataclass(frozen=True)
class Created:
    instances: list[m.Instance]
    admin_pass: str
    reservation_id: str


def create(
    session: Session,
    ctx: Context,
    req: CreateRequest,
    volume_placement: Any = None,
    force_config_drive: bool = False,
) -> Created:
    """The create operation's execute step (server_operations.CREATE), which records the
    ``create`` action of each server and wakes the scheduler. ``volume_placement``
    (kumo.core.volume.volumes.Placement): how new volumes of its block device mappings
    are placed (defaults when None); ``force_config_drive`` (the [compute] setting):
    every server gets a config drive, and shows ``config_drive`` true as Nova's do, so
    the disk names its volumes get leave the config drive's (vdb) out."""
    name = req.name
    if ctx.project_id is None:
        raise Forbidden("Servers are created with a project-scoped token.")
    flavor_id = req.flavor_id
    try:
        flavor = flavors.get(session, flavor_id, ctx.project_id, ctx.is_admin)
    except NotFound:
        raise BadRequest(f"Flavor {flavor_id} could not be found.") from None
    if flavor.disabled:
        raise BadRequest(f"Flavor {flavor_id} is disabled.")
    mappings = req.mappings
    from kumo.core.volume.volumes import Placement  # block storage imports compute

    prepared = block_devices.prepare(session, ctx, mappings, volume_placement or Placement())
    root_volume = block_devices.boot_volume(prepared)
    if root_volume is not None and not req.image_id:
        image_id, min_disk, min_ram = (
            None,
            0,
            int((root_volume.image_meta or {}).get("min_ram") or 0),
        )
    else:
        image_id, min_disk, min_ram = servers.check_image(
            session, ctx, req.image_id or mappings.image_id
        )
    if flavor.root_gb and min_disk > flavor.root_gb:
        raise BadRequest(
            f"Flavor's disk is too small for requested image. Flavor disk is "
            f"{flavor.root_gb} GiB, image needs {min_disk} GiB."
        )
    if min_ram > flavor.memory_mb:
        raise BadRequest("Flavor's memory is too small for requested image.")
    requested_nics = nics.resolve(
        session, ctx, list(req.networks) if req.networks is not None else None
    )
    groups = nics.security_group_ids(session, ctx, req.security_groups)
    limits = quotas.limits(session, ctx.project_id)
    meta = servers.metadata_within(req.metadata, limits["metadata_items"])
    key_name = req.key_name
    key_data = None
    if key_name is not None:
        try:
            key_data = keypairs.get(session, ctx.user_id, key_name).public_key
        except NotFound:
            raise BadRequest("Invalid key_name provided.") from None
    config_drive = req.config_drive or force_config_drive
    zone, forced_host_id = requested_zone(session, ctx, req.availability_zone)
    min_count, max_count = req.min_count, req.max_count
    admin_pass = req.admin_pass or secrets.token_urlsafe(9)

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
    snapshot = servers.flavor_snapshot(flavor)
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
            user_data=req.user_data,
            meta=meta,
            config_drive=config_drive,
            availability_zone=zone,
            requested_host_id=forced_host_id,
            description=req.description,
            hostname=_hostname(server_name),
            access_ipv4=req.access_ipv4,
            access_ipv6=req.access_ipv6,
            reservation_id=reservation,
            launch_index=index,
            vm_state="building",
            task_state="scheduling",
            desired_state="active",
            task_deadline=utcnow() + servers.TASK_DEADLINE,
        )
        session.add(instance)
        nics.plug_on_create(session, ctx, instance, requested_nics, groups)
        block_devices.attach_on_create(session, instance, prepared)
        created.append(instance)
    if req.group_id is not None:
        server_groups.join(session, ctx, req.group_id, created)
    # No flush here: the commit's writes them with the create action the runner records
    # next, so the recorders (usage, events, notifications: kumo.core.recording) build their
    # rows before this transaction's first write takes SQLite's one writer's turn.
    return Created(created, admin_pass, reservation)


def requested_zone(session: Session, ctx: Context, value: str | None) -> tuple[str, str | None]:
    """The zone a create asks for ("" for any) and the id of the host an admin forces with
    ``az:host`` (or ``az:host:node``, ``az::node``; a kumo node is its host).

    The zone must be one of the available zones, as Nova checks at the API; an unknown
    forced host is refused here rather than failing later at the scheduler."""
    if not value:
        return "", None
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


def _hostname(name: str) -> str:
    """A DNS label from the server name, as Nova derives it."""
    label = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-.")[:63]
    return label or "server"

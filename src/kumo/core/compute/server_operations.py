"""The server actions as lifecycle operations (kumo.core.operations): their typed
requests and what each executes in the runner's transaction.

The API builds the request from each microversion's JSON (kumo.api.compute.server_actions);
the CLI and the controller build it from their own arguments. A request carries values,
never a body or a microversion. The instance action each records is the operation's
name; the states each may start from are states.SERVER_TRANSITIONS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from kumo.core import wakeup
from kumo.core.compute import (
    instance_actions,
    migrations,
    moves,
    nics,
    server_create,
    servers,
    shelve,
)
from kumo.core.compute.placement import free_on
from kumo.core.operations import CLAIMS, Env, Operation, Result
from kumo.core.policy import Context
from kumo.db import models as m

Val = TypeVar("Val")


@dataclass(frozen=True)
class ServerRequest:
    """An action on one server that takes no arguments."""

    server_id: str


@dataclass(frozen=True)
class Resize(ServerRequest):
    flavor_ref: Any  # an id or a URL ending in one, checked after the server's state


@dataclass(frozen=True)
class Reboot(ServerRequest):
    kind: str  # "SOFT" or "HARD" (the API refuses anything else)

    def transition(self) -> str:
        """A hard reboot may start from more states than a soft one."""
        return "reboot_hard" if self.kind == "HARD" else "reboot"


@dataclass(frozen=True)
class Lock(ServerRequest):
    reason: str | None = None


@dataclass(frozen=True)
class Delete(ServerRequest):
    force: bool = False


@dataclass(frozen=True)
class AddFixedIp(ServerRequest):
    network_id: Any


@dataclass(frozen=True)
class RemoveFixedIp(ServerRequest):
    address: Any


@dataclass(frozen=True)
class SecurityGroup(ServerRequest):
    name: Any


@dataclass(frozen=True)
class Snapshot(ServerRequest):
    """createImage: the new image's name; its metadata is checked against the project's
    limit in core."""

    name: str
    metadata: Any = None


@dataclass(frozen=True)
class Backup(Snapshot):
    backup_type: str = ""
    rotation: int = 0  # how many backups of this type to keep


@dataclass(frozen=True)
class Rescue(ServerRequest):
    admin_pass: str | None = None
    image_ref: Any = None  # the rescue image (default: the server's own)


@dataclass(frozen=True)
class Evacuate(ServerRequest):
    evacuation: moves.EvacuateRequest


@dataclass(frozen=True)
class LiveMigrate(ServerRequest):
    live: migrations.LiveRequest


@dataclass(frozen=True)
class MigrationRequest(ServerRequest):
    """force_complete or abort of one of the server's live migrations."""

    migration_id: str


@dataclass(frozen=True)
class AttachInterface(ServerRequest):
    net_id: Any = None
    port_id: Any = None
    fixed_ip: Any = None


@dataclass(frozen=True)
class DetachInterface(ServerRequest):
    port_id: str


@dataclass
class Answer:
    """What a server action answers with, beyond the server itself."""

    admin_pass: str | None = None
    image_id: str | None = None
    rotation: int = 0
    destination: str | None = None  # the host name a move goes to
    dropped_images: list[str] = field(default_factory=list)  # whose data the caller purges


ServerOperation = Operation[Any, Answer]


def _done(instance: m.Instance, *other_hosts: str | None, **answer: Any) -> Result[Answer]:
    return Result(Answer(**answer), instance, other_hosts=other_hosts)


def _at_once(result: Result[Val]) -> Result[Val]:
    """An action no task tracks and no agent reports on (its desired state is all there
    is to write, as Nova does these in its API or by a call that returns when done): it is
    finished with its transaction, and so are its events (kumo.core.compute.action_events)."""
    result.finished = True
    return result


def _create(
    session: Session, ctx: Context, req: server_create.CreateRequest, env: Env
) -> Result[server_create.Created]:
    """Each new server gets its ``create`` action and the scheduler places them (the
    agents of the hosts of new volumes its block device mappings made are woken by
    volumes.create, after the same commit)."""
    created = server_create.create(session, ctx, req, env.volume_placement, env.force_config_drive)
    first, *others = created.instances
    return Result(created, first, also=tuple(others), topics=(wakeup.SCHEDULER,))


def _power(key: str) -> ServerOperation:
    def execute(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
        return _done(servers.act(session, ctx, req.server_id, key))

    name = servers.ACTIONS[key].name
    return Operation(name, ServerRequest, execute, transition=name, checks_lock=True)


def _reboot(session: Session, ctx: Context, req: Reboot, env: Env) -> Result[Answer]:
    return _done(servers.reboot(session, ctx, req.server_id, req.kind))


def _lock(session: Session, ctx: Context, req: Lock, env: Env) -> Result[Answer]:
    return _at_once(_done(servers.set_lock(session, ctx, req.server_id, True, req.reason)))


def _unlock(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    return _at_once(_done(servers.set_lock(session, ctx, req.server_id, False)))


def _rebuild(session: Session, ctx: Context, req: servers.Rebuild, env: Env) -> Result[Answer]:
    shelved = servers.get(session, ctx, req.server_id).shelved_image_id
    instance, admin_pass = servers.rebuild(session, ctx, req)
    return _done(instance, admin_pass=admin_pass, dropped_images=[shelved] if shelved else [])


def _delete(session: Session, ctx: Context, req: Delete, env: Env) -> Result[Answer]:
    instance = servers.delete(session, ctx, req.server_id, force=req.force)
    dropped = [instance.shelved_image_id] if instance.deleted and instance.shelved_image_id else []
    result = _done(instance, dropped_images=dropped)
    result.finished = instance.deleted  # no host had it: deleted in this transaction
    return result


def _shelve(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    return _done(shelve.shelve(session, ctx, req.server_id))


def _shelve_offload(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    return _done(shelve.shelve_offload(session, ctx, req.server_id))


def _unshelve(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    return _done(shelve.unshelve(session, ctx, req.server_id))


def _resize(session: Session, ctx: Context, req: Resize, env: Env) -> Result[Answer]:
    """In place: the host's free capacity, read under the claims lock the runner took."""
    row = session.get(m.Instance, req.server_id)
    free = (
        free_on(session, env.scheduler, env.heartbeat_timeout, row.host_id)
        if row is not None and row.host_id is not None
        else None
    )
    return _done(servers.resize(session, ctx, req.server_id, req.flavor_ref, free))


def _resize_source(session: Session, ctx: Context, server_id: str) -> str | None:
    """The source host of a cold move waiting for confirmation, which has its part to do."""
    cold = moves.waiting_cold(session, servers.get(session, ctx, server_id))
    return cold.source_host_id if cold is not None else None


def _confirm(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    source = _resize_source(session, ctx, req.server_id)
    result = _done(servers.confirm_resize(session, ctx, req.server_id), source)
    # Resized in place: the confirm is all there is. A move's ends when its source host
    # reports its copy destroyed (moves.py ends the action then).
    return _at_once(result) if source is None else result


def _revert(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    source = _resize_source(session, ctx, req.server_id)
    return _done(servers.revert_resize(session, ctx, req.server_id), source)


def _create_image(session: Session, ctx: Context, req: Snapshot, env: Env) -> Result[Answer]:
    instance, image = servers.create_image(session, ctx, req.server_id, req.name, req.metadata)
    return _done(instance, image_id=image.id)


def _create_backup(session: Session, ctx: Context, req: Backup, env: Env) -> Result[Answer]:
    instance, image = servers.create_backup(
        session, ctx, req.server_id, req.name, req.metadata, req.backup_type
    )
    result = _done(instance, image_id=image.id, rotation=req.rotation)
    result.message = f"{instance_actions.ROTATION_PREFIX}{req.rotation}"  # rotate_backups reads it
    return result


def _rescue(session: Session, ctx: Context, req: Rescue, env: Env) -> Result[Answer]:
    instance, admin_pass, message = servers.rescue(
        session, ctx, req.server_id, req.admin_pass, req.image_ref
    )
    result = _done(instance, admin_pass=admin_pass)
    result.message = message  # the rescue image, which the agent's work item reads back
    return result


def _unrescue(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    return _done(servers.unrescue(session, ctx, req.server_id))


def _crash_dump(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    return _done(servers.trigger_crash_dump(session, ctx, req.server_id))


def _live(session: Session, ctx: Context, req: LiveMigrate, env: Env) -> Result[Answer]:
    instance, migration = migrations.live_migrate(
        session, ctx, req.server_id, req.live, env.scheduler, env.heartbeat_timeout
    )
    return _done(instance, migration.dest_host_id)


def _migrate(session: Session, ctx: Context, req: ServerRequest, env: Env) -> Result[Answer]:
    instance, migration = moves.cold_migrate(
        session, ctx, req.server_id, env.scheduler, env.heartbeat_timeout
    )
    return _done(instance, migration.dest_host_id)


def _evacuate(session: Session, ctx: Context, req: Evacuate, env: Env) -> Result[Answer]:
    """The destination is the server's host once moved: its agent is woken to rebuild."""
    instance, migration = moves.evacuate(
        session, ctx, req.server_id, req.evacuation, env.scheduler, env.heartbeat_timeout
    )
    return _done(instance, admin_pass=req.evacuation.admin_pass, destination=migration.dest_compute)


def _migration_step(
    step: Callable[[Session, Context, str, str], tuple[m.Instance, m.Migration]],
) -> Callable[[Session, Context, MigrationRequest, Env], Result[Answer]]:
    """A request to a running live migration: both of its hosts have their part to do."""

    def execute(session: Session, ctx: Context, req: MigrationRequest, env: Env) -> Result[Answer]:
        instance, migration = step(session, ctx, req.server_id, req.migration_id)
        return _done(instance, migration.source_host_id, migration.dest_host_id)

    return execute


def _attach_interface(
    session: Session, ctx: Context, req: AttachInterface, env: Env
) -> Result[dict[str, Any]]:
    """The value: the new interface in Nova's shape (read in the transaction)."""
    instance = servers.get(session, ctx, req.server_id)
    port = nics.attach(session, ctx, instance, req.net_id, req.port_id, req.fixed_ip)
    session.flush()
    return _at_once(Result(nics.interface_view(session, port), instance))


def _detach_interface(
    session: Session, ctx: Context, req: DetachInterface, env: Env
) -> Result[None]:
    instance = servers.get(session, ctx, req.server_id)
    nics.detach(session, ctx, instance, req.port_id)
    return _at_once(Result(None, instance))


def _add_fixed_ip(session: Session, ctx: Context, req: AddFixedIp, env: Env) -> Result[Answer]:
    instance = servers.get(session, ctx, req.server_id)
    nics.add_fixed_ip(session, ctx, instance, req.network_id)
    return _at_once(_done(instance))


def _remove_fixed_ip(
    session: Session, ctx: Context, req: RemoveFixedIp, env: Env
) -> Result[Answer]:
    instance = servers.get(session, ctx, req.server_id)
    nics.remove_fixed_ip(session, ctx, instance, req.address)
    return _at_once(_done(instance))


def _group(add: bool) -> ServerOperation:
    def execute(session: Session, ctx: Context, req: SecurityGroup, env: Env) -> Result[Answer]:
        instance = servers.get(session, ctx, req.server_id)
        nics.change_security_group(session, ctx, instance, req.name, add=add)
        return _at_once(_done(instance))

    return Operation("addSecurityGroup" if add else "removeSecurityGroup", SecurityGroup, execute)


def _on(
    name: str,
    request: type[Any],
    execute: Callable[..., Result[Any]],
    *,
    transition: str | None = None,
    locks: tuple[str, ...] = (),
    policy: str | None = None,
    checks_lock: bool = True,
) -> ServerOperation:
    """An action on one server whose state the runner checks first: its entry in
    states.SERVER_TRANSITIONS is the action's name unless given."""
    return Operation(
        name,
        request,
        execute,
        locks=locks,
        transition=transition or name,
        checks_lock=checks_lock,
        policy=policy,
    )


CREATE = Operation("create", server_create.CreateRequest, _create)
START, STOP = _power("os-start"), _power("os-stop")
PAUSE, UNPAUSE = _power("pause"), _power("unpause")
SUSPEND, RESUME = _power("suspend"), _power("resume")
REBOOT: ServerOperation = Operation(
    "reboot", Reboot, _reboot, transition=Reboot.transition, checks_lock=True
)
LOCK = Operation("lock", Lock, _lock)
UNLOCK = Operation("unlock", ServerRequest, _unlock)
REBUILD = _on("rebuild", servers.Rebuild, _rebuild)
DELETE = Operation("delete", Delete, _delete)
SHELVE = _on("shelve", ServerRequest, _shelve)
SHELVE_OFFLOAD = _on(
    "shelveOffload", ServerRequest, _shelve_offload, policy="compute:shelve_offload"
)
UNSHELVE = _on("unshelve", ServerRequest, _unshelve)
RESIZE = _on("resize", Resize, _resize, locks=(CLAIMS,))
CONFIRM_RESIZE = _on("confirmResize", ServerRequest, _confirm, checks_lock=False)
REVERT_RESIZE = _on("revertResize", ServerRequest, _revert, checks_lock=False)
CREATE_IMAGE = _on("createImage", Snapshot, _create_image)
CREATE_BACKUP = _on("createBackup", Backup, _create_backup)
RESCUE = _on("rescue", Rescue, _rescue)
UNRESCUE = _on("unrescue", ServerRequest, _unrescue)
TRIGGER_CRASH_DUMP = _on(instance_actions.CRASH_DUMP, ServerRequest, _crash_dump)
LIVE_MIGRATE = _on(
    migrations.LIVE,
    LiveMigrate,
    _live,
    transition="os-migrateLive",
    locks=(CLAIMS,),
    policy="compute:migrate_live",
)
MIGRATE = _on("migrate", ServerRequest, _migrate, locks=(CLAIMS,), policy="compute:migrate")
EVACUATE = _on(
    "evacuate", Evacuate, _evacuate, locks=(CLAIMS,), policy="compute:evacuate", checks_lock=False
)
ADD_FIXED_IP = _on("addFixedIp", AddFixedIp, _add_fixed_ip, checks_lock=False)
REMOVE_FIXED_IP = _on("removeFixedIp", RemoveFixedIp, _remove_fixed_ip, checks_lock=False)
FORCE_COMPLETE = _on(
    "live_migration_force_complete",
    MigrationRequest,
    _migration_step(migrations.force_complete),
    transition="force_complete",
    policy="compute:server_migrations:force_complete",
)
ABORT_MIGRATION = _on(
    "live_migration_cancel",
    MigrationRequest,
    _migration_step(migrations.abort),
    transition="abort",
    policy="compute:server_migrations:delete",
)
ATTACH_INTERFACE = _on("attach_interface", AttachInterface, _attach_interface, checks_lock=False)
DETACH_INTERFACE = _on("detach_interface", DetachInterface, _detach_interface, checks_lock=False)
ADD_SECURITY_GROUP = _group(True)
REMOVE_SECURITY_GROUP = _group(False)

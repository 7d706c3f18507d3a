"""POST /servers/{id}/action: each action's JSON, in the caller's microversion, turned into
its operation's typed request (kumo.core.compute.server_operations); the lifecycle runner
does the rest. This is the only place a server action's body or microversion is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kumo.core.compute import migrations, moves, servers
from kumo.core.compute import server_operations as ops
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion

Parse = Callable[[str, Any, APIVersion], Any]


def _arg(args: Any, key: str) -> Any:
    if not isinstance(args, dict) or key not in args:
        raise BadRequest(f"Invalid input for field/attribute {key}: it is required.")
    return args[key]


def _plain(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
    return ops.ServerRequest(server_id)


def _body(server_id: str, args: Any, version: APIVersion) -> ops.Body:
    return ops.Body(server_id, args)


def _reboot(server_id: str, args: Any, version: APIVersion) -> ops.Reboot:
    return ops.Reboot(server_id, args.get("type") if isinstance(args, dict) else None)


def _lock(server_id: str, args: Any, version: APIVersion) -> ops.Lock:
    return ops.Lock(server_id, args.get("locked_reason") if isinstance(args, dict) else None)


def _rebuild(server_id: str, args: Any, version: APIVersion) -> ops.Body:
    if isinstance(args, dict):
        servers.no_description_before_2_19(args, version)
    return ops.Body(server_id, args)


def _crash_dump(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
    if args is not None:
        raise BadRequest(
            f"Invalid input for field/attribute trigger_crash_dump. Value: {args}. "
            f"{args!r} is not of type 'null'"
        )
    return ops.ServerRequest(server_id)


def _force_delete(server_id: str, args: Any, version: APIVersion) -> ops.Delete:
    return ops.Delete(server_id, force=True)


def _live(server_id: str, args: Any, version: APIVersion) -> ops.LiveMigrate:
    return ops.LiveMigrate(server_id, migrations.parse_live(args, version))


def _migrate(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
    moves.parse_migrate(args, version)
    return ops.ServerRequest(server_id)


def _evacuate(server_id: str, args: Any, version: APIVersion) -> ops.Evacuate:
    return ops.Evacuate(server_id, moves.parse_evacuate(args, version))


def _add_fixed_ip(server_id: str, args: Any, version: APIVersion) -> ops.AddFixedIp:
    return ops.AddFixedIp(server_id, _arg(args, "networkId"))


def _remove_fixed_ip(server_id: str, args: Any, version: APIVersion) -> ops.RemoveFixedIp:
    return ops.RemoveFixedIp(server_id, _arg(args, "address"))


def _group(server_id: str, args: Any, version: APIVersion) -> ops.SecurityGroup:
    return ops.SecurityGroup(server_id, _arg(args, "name"))


# Action name in the body -> (its parser, its operation, the microversion it needs).
ACTIONS: dict[str, tuple[Parse, ops.ServerOperation, str]] = {
    "os-start": (_plain, ops.START, "2.1"),
    "os-stop": (_plain, ops.STOP, "2.1"),
    "pause": (_plain, ops.PAUSE, "2.1"),
    "unpause": (_plain, ops.UNPAUSE, "2.1"),
    "suspend": (_plain, ops.SUSPEND, "2.1"),
    "resume": (_plain, ops.RESUME, "2.1"),
    "reboot": (_reboot, ops.REBOOT, "2.1"),
    "lock": (_lock, ops.LOCK, "2.1"),
    "unlock": (_plain, ops.UNLOCK, "2.1"),
    "rebuild": (_rebuild, ops.REBUILD, "2.1"),
    "shelve": (_body, ops.SHELVE, "2.1"),
    "shelveOffload": (_body, ops.SHELVE_OFFLOAD, "2.1"),
    "unshelve": (_body, ops.UNSHELVE, "2.1"),
    "resize": (_body, ops.RESIZE, "2.1"),
    "confirmResize": (_plain, ops.CONFIRM_RESIZE, "2.1"),
    "revertResize": (_plain, ops.REVERT_RESIZE, "2.1"),
    "forceDelete": (_force_delete, ops.DELETE, "2.1"),
    "createImage": (_body, ops.CREATE_IMAGE, "2.1"),
    "createBackup": (_body, ops.CREATE_BACKUP, "2.1"),
    "rescue": (_body, ops.RESCUE, "2.1"),
    "unrescue": (_plain, ops.UNRESCUE, "2.1"),
    "trigger_crash_dump": (_crash_dump, ops.TRIGGER_CRASH_DUMP, "2.17"),
    "os-migrateLive": (_live, ops.LIVE_MIGRATE, "2.1"),
    "migrate": (_migrate, ops.MIGRATE, "2.1"),
    "evacuate": (_evacuate, ops.EVACUATE, "2.1"),
    "addFixedIp": (_add_fixed_ip, ops.ADD_FIXED_IP, "2.1"),
    "removeFixedIp": (_remove_fixed_ip, ops.REMOVE_FIXED_IP, "2.1"),
    "addSecurityGroup": (_group, ops.ADD_SECURITY_GROUP, "2.1"),
    "removeSecurityGroup": (_group, ops.REMOVE_SECURITY_GROUP, "2.1"),
}


def lookup(action: str, version: APIVersion) -> tuple[Parse, ops.ServerOperation] | None:
    """The action's parser and operation, or None when there is no such action at this
    microversion."""
    found = ACTIONS.get(action)
    if found is None or not version.at_least(found[2]):
        return None
    return found[0], found[1]
